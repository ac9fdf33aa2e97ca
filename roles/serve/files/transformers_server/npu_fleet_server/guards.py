"""Repetition guard, layers 2 and 3 (layer 1, the repetition penalty, is in ``sampling.py``).

Small or badly quantised models fall into loops that a penalty alone does not
break. The guard watches generated token ids and stops a generation when

* layer 2 (``repeated_chunk``): a short chunk, shorter than ``block_min``
  tokens (a single token included), has been emitted more than
  ``max_chunk_repeats`` times in a row;
* layer 3 (``repeated_block``): the tail is ``block_count`` consecutive copies
  of one block of ``block_min`` to ``block_max`` tokens.

It also decides which tokens may be sent to the client yet: tokens that are
already repeating the text before them (the same token ``p`` places earlier,
for some tracked period ``p``) are held back until the repetition breaks
(then they are released, usually one step later) or trips a layer (then they
are dropped), so a stopped stream ends with the first copy, not with the loop.
The first token is never held, so time to first token is unchanged; with
``hold_after`` > 1 holding starts later, and up to ``hold_after - 1`` tokens of
a loop can be sent before it is caught.

For every period ``p`` the guard knows ``runs[p]``: how many of the last
tokens each equal the token ``p`` places before them. The tail is
``1 + runs[p] / p`` copies of a ``p``-token block. Only non-zero runs are
kept, found from where the new token occurred before (at most ``block_max``
back), so a token costs as many steps as its recent occurrences: a few for
ordinary text, never more than ``block_max``.
"""

from __future__ import annotations

from typing import Dict, List, Optional

REPEATED_CHUNK = "repeated_chunk"
REPEATED_BLOCK = "repeated_block"


class RepetitionGuard:
    def __init__(self, max_chunk_repeats: int = 10, block_min: int = 16, block_max: int = 256, block_count: int = 3, hold_after: int = 1):
        if block_min < 1 or block_max < block_min:
            raise ValueError("need 1 <= block_min <= block_max, got %d and %d" % (block_min, block_max))
        self.max_chunk_repeats = max_chunk_repeats
        self.block_min = block_min
        self.block_max = block_max
        self.block_count = block_count
        self.hold_after = hold_after
        # A switched-off layer neither stops nor holds: its periods are not tracked.
        self._first_period = 1 if max_chunk_repeats else block_min
        self._last_period = block_max if block_count else block_min - 1
        self._tokens: List[int] = []
        self._seen_at: Dict[int, List[int]] = {}
        self._runs: Dict[int, int] = {}
        self._released = 0
        self.stop_reason: Optional[str] = None
        self.stop_period = 0

    @property
    def held(self) -> int:
        """Tokens generated but not yet released."""
        return len(self._tokens) - self._released

    def push(self, token: int) -> List[int]:
        """Add one generated token; return the tokens that may be sent now."""
        if self.stop_reason is not None:
            return []
        index = len(self._tokens)
        self._tokens.append(token)
        first, last = self._first_period, self._last_period
        old_runs = self._runs
        runs = {}
        seen = self._seen_at.setdefault(token, [])
        keep_from = 0
        for position in reversed(seen):
            period = index - position
            if period > last:
                keep_from = seen.index(position) + 1
                break
            if period >= first:
                runs[period] = old_runs.get(period, 0) + 1
        if keep_from:
            del seen[:keep_from]
        seen.append(index)
        self._runs = runs
        hold = 0
        tripped = 0
        block_min, hold_after = self.block_min, self.hold_after
        for period, run in runs.items():
            if run >= (period if period < hold_after else hold_after) and run > hold:
                hold = run
            if period < block_min:
                limit = self.max_chunk_repeats * period
            else:
                limit = (self.block_count - 1) * period
            if run >= limit and (not tripped or period < tripped):
                tripped = period
        count = index + 1
        if tripped:
            self.stop_period = tripped
            self.stop_reason = REPEATED_CHUNK if tripped < block_min else REPEATED_BLOCK
            # Keep the first copy; everything after it is the loop.
            return self._release_to(count - runs[tripped])
        return self._release_to(count - hold)

    def flush(self) -> List[int]:
        """Generation ended without a guard stop: release what was held."""
        if self.stop_reason is not None:
            return []
        return self._release_to(len(self._tokens))

    def _release_to(self, upto: int) -> List[int]:
        if upto <= self._released:
            return []
        out = self._tokens[self._released : upto]
        self._released = upto
        return out
