"""Strict JSON for request bodies: whatever the decoder would let through but the
server cannot use becomes a 400 naming the problem, never a 500 later.

Python's decoder accepts ``NaN``/``Infinity`` (and ``1e999`` as infinity),
lone UTF-16 surrogates (``"\\ud800"``, which no tokenizer can encode), and
nesting until the interpreter's recursion limit.
"""

from __future__ import annotations

import json
import math

from .protocol import RequestError

MAX_DEPTH = 32


def _no_constant(name):
    raise RequestError("the request body is not valid JSON: %s is not a JSON number" % name)


def _finite(text):
    value = float(text)
    if not math.isfinite(value):
        raise RequestError("the request body is not valid JSON: %s is out of range for a number" % text[:32])
    return value


def _check_string(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError("the request body has a string with a lone UTF-16 surrogate (\\ud800-\\udfff): not text") from None


def _check_tree(value) -> None:
    """Depth and strings, iteratively (a recursive walk is what deep nesting attacks)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise RequestError("the request body nests objects and arrays deeper than %d levels" % MAX_DEPTH)
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_string(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def parse(raw: bytes):
    """Decode a request body or raise RequestError (400)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError("the request body is not valid JSON: not UTF-8 (%s)" % exc.reason) from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise RequestError("the request body nests objects and arrays deeper than %d levels" % MAX_DEPTH) from None
    except ValueError as exc:
        raise RequestError("the request body is not valid JSON: %s" % exc) from None
    _check_tree(value)
    return value
