"""Token ids to text deltas, one token at a time.

Decoding each new token alone breaks multi-byte characters and drops the
leading space SentencePiece tokenizers encode in the token; decoding the whole
sequence every step is quadratic. This keeps a short window: it decodes from
``prefix`` (a few tokens back) and sends only what the window adds, and holds
a delta that ends in U+FFFD (an incomplete UTF-8 sequence) until the next
token completes it. A character is at most 4 bytes and every token carries at
least one, so once 4 tokens are pending and the text still ends in U+FFFD the
bytes are invalid (a broken model emits stray continuation bytes) and are sent
as they are rather than holding the stream back indefinitely.
"""

from __future__ import annotations

from typing import Iterable, List

REPLACEMENT = "\ufffd"
MAX_CHAR_TOKENS = 4


class IncrementalDetokenizer:
    def __init__(self, tokenizer, skip_special_tokens: bool = True):
        self._tokenizer = tokenizer
        self._skip = skip_special_tokens
        # Fast tokenizers: call the Rust decoder directly, a few times cheaper
        # per token than the Python wrapper (no clean-up pass, as vLLM streams).
        backend = getattr(tokenizer, "_tokenizer", None)
        self._backend = backend if callable(getattr(backend, "decode", None)) else None
        self._ids: List[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids) -> str:
        if self._backend is not None:
            return self._backend.decode(ids, skip_special_tokens=self._skip)
        return self._tokenizer.decode(ids, skip_special_tokens=self._skip)

    def add(self, ids: Iterable[int]) -> str:
        """Append tokens; return the text they complete (possibly empty)."""
        self._ids.extend(ids)
        if len(self._ids) == self._read:
            return ""
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        complete = not new_text.endswith(REPLACEMENT) or len(self._ids) - self._read >= MAX_CHAR_TOKENS
        if len(new_text) > len(prefix_text) and complete:
            self._prefix, self._read = self._read, len(self._ids)
            return new_text[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        """The text still pending at the end, incomplete characters included."""
        if self._read == len(self._ids):
            return ""
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return new_text[len(prefix_text) :]
