"""OpenAI ``stop`` strings on streamed text.

A stop string can arrive split over several tokens, so text that could be the
start of one is held back until it either completes the stop string (the
generation ends and the stop string is not sent) or cannot anymore.
"""

from __future__ import annotations

from typing import Iterable, Optional


class StopStringMatcher:
    def __init__(self, stops: Iterable[str]):
        self._stops = [stop for stop in stops if stop]
        self._pending = ""
        self.matched: Optional[str] = None

    def feed(self, text: str) -> str:
        """Return the part of the text seen so far that is safe to send."""
        if self.matched is not None or not text:
            return ""
        if not self._stops:
            return text
        buffer = self._pending + text
        first, which = -1, None
        for stop in self._stops:
            index = buffer.find(stop)
            if index != -1 and (first == -1 or index < first):
                first, which = index, stop
        if which is not None:
            self.matched = which
            self._pending = ""
            return buffer[:first]
        hold = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), hold, -1):
                if buffer.endswith(stop[:size]):
                    hold = size
                    break
        self._pending = buffer[len(buffer) - hold :] if hold else ""
        return buffer[: len(buffer) - hold]

    def flush(self) -> str:
        """Generation ended: what was held could not become a stop string."""
        pending, self._pending = self._pending, ""
        return "" if self.matched is not None else pending
