# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Read the header of a ``*.safetensors`` file, and nothing else.

A safetensors file is an 8-byte little-endian header length, a JSON header
naming each tensor's dtype, shape and ``[begin, end)`` data offsets, then the
data section. Profiling a checkpoint needs only the headers (weight bytes,
element counts, tensor names), so this reader never touches tensor data: a
700 GB checkpoint is read in milliseconds. It checks each header against the
file size, so an interrupted download is reported by file name here rather
than minutes into a container start.

Kept apart from ``_model_profile`` (the config rules) because it is a file
format, not a serving decision, and is tested on its own.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any, Dict, Tuple

__all__ = [
    "ModelProfileError",
    "SAFETENSORS_DTYPE_BYTES",
    "SAFETENSORS_MAX_HEADER",
    "header_length",
    "parse_header",
    "read_safetensors_header",
    "tensor_totals",
]

# The safetensors format caps the JSON header at 100 MB; a larger length is a
# corrupt or non-safetensors file, and reading it would be the expensive mistake.
SAFETENSORS_MAX_HEADER = 100 * 1000 * 1000

# Bytes per element of each safetensors dtype string.
SAFETENSORS_DTYPE_BYTES = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


# Defined here, not in _model_profile (which imports this file), so that a bad
# safetensors header raises the very exception every caller of profile_model
# already catches; _model_profile re-exports it.
class ModelProfileError(Exception):
    """A checkpoint file is missing, malformed or lacks a field the profile needs.

    The message always names the file, so a failed task tells the operator
    which file to fix or re-download.
    """


def read_safetensors_header(path: str) -> Tuple[Dict[str, Any], int]:
    """Return (header dict, header length) of one safetensors file; see _read_header."""
    header, length, _totals = _read_header(path)
    return header, length


def _read_header(path: str) -> Tuple[Dict[str, Any], int, Tuple[int, int, int]]:
    """Return (header, header length, tensor_totals) of one safetensors file.

    Reads 8 bytes plus the header, nothing else. Checks the header against the
    file size so that an interrupted download is reported here, by name, and
    not as a cryptic error minutes into container start.
    """
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            length = header_length(path, handle.read(8), size)
            raw = handle.read(length)
    except OSError as exc:
        raise ModelProfileError("%s: cannot read: %s" % (path, exc))
    header, totals = parse_header(path, raw, length, size)
    return header, length, totals


def header_length(where: str, prefix: bytes, size: int) -> int:
    """The JSON header length from a file's first 8 bytes, checked against the file size.

    ``where`` names the file in errors (a path, or a hub URL when the bytes
    came from a range request); ``size`` is the whole file's size in bytes.
    """
    if len(prefix) < 8:
        raise ModelProfileError("%s: truncated safetensors file: %d bytes, shorter than the 8-byte header length" % (where, len(prefix)))
    (length,) = struct.unpack("<Q", prefix[:8])
    if length > SAFETENSORS_MAX_HEADER or length > size - 8:
        raise ModelProfileError(
            "%s: truncated or corrupt safetensors header: it claims %d bytes, but the file holds %d after the "
            "8-byte length (safetensors caps headers at %d)" % (where, length, size - 8, SAFETENSORS_MAX_HEADER)
        )
    return length


def parse_header(where: str, raw: bytes, length: int, size: int) -> Tuple[Dict[str, Any], Tuple[int, int, int]]:
    """(header dict, tensor_totals) of the ``length`` header bytes of a file of ``size`` bytes; see _read_header."""
    if len(raw) < length:
        raise ModelProfileError(
            "%s: truncated safetensors file: the header claims %d bytes, only %d could be read" % (where, length, len(raw))
        )
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelProfileError("%s: safetensors header is not valid JSON: %s" % (where, exc))
    except RecursionError:
        raise ModelProfileError(
            "%s: safetensors header is JSON nested too deeply to read (a corrupt or hostile file); download the shard again" % where
        )
    if not isinstance(header, dict):
        raise ModelProfileError("%s: safetensors header is not a JSON object" % where)
    totals = tensor_totals(where, header)
    if totals[2] > size - 8 - length:
        raise ModelProfileError(
            "%s: truncated safetensors file: tensor data ends at byte %d of the data section, but only %d bytes "
            "follow the header (incomplete download?)" % (where, totals[2], size - 8 - length)
        )
    return header, totals


def _is_int(value: Any) -> bool:
    """An int that is not a bool (JSON true would otherwise pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def tensor_totals(path: str, header: Dict[str, Any]) -> Tuple[int, int, int]:
    """(data bytes, stored elements, end of the last tensor's data) of one header.

    One pass, because a 50,000-tensor header is walked on every profile; an
    entry without valid ``data_offsets`` or ``shape`` is an error naming the tensor.
    """
    total = elements = end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, stop = entry["data_offsets"]
            shape = list(entry["shape"])
        except (TypeError, KeyError, ValueError):
            raise ModelProfileError("%s: tensor %r needs 'shape' and 'data_offsets' [begin, end]" % (path, name))
        if not all(_is_int(dim) and dim >= 0 for dim in shape):
            raise ModelProfileError(
                "%s: tensor %r has shape %r; every dimension must be a whole number >= 0 (a corrupt header: "
                "download the shard again)" % (path, name, entry["shape"])
            )
        count = 1
        for dim in shape:
            count *= dim
        if not (_is_int(begin) and _is_int(stop) and _is_int(count)) or stop < begin:
            raise ModelProfileError("%s: tensor %r has no valid data_offsets [begin, end]" % (path, name))
        total += stop - begin
        elements += count
        if stop > end:
            end = stop
    return total, elements, end
