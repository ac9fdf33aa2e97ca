"""Build tiny Hugging Face checkpoint directories for the model-profile tests.

Real checkpoints are gigabytes; the profile only reads config files, the
safetensors index and the safetensors headers. So the tests write those
by hand: a safetensors file is an 8-byte little-endian header length, a JSON
header naming each tensor's dtype, shape and [begin, end) data offsets, then
the data section - here zeros, or a hole in a sparse file.
"""

import json
import os
import shutil
import struct

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "models")

ELEMENT_BYTES = {"F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "U8": 1, "I32": 4}


def fixture_dir(name):
    """Path of a real config fixture folder (<org>__<name>)."""
    return os.path.join(FIXTURES, name)


def copy_fixture(name, dest, config_name="config.json"):
    """Copy one fixture's config into a fresh checkpoint directory ``dest``."""
    os.makedirs(dest, exist_ok=True)
    shutil.copy(os.path.join(fixture_dir(name), config_name), os.path.join(dest, "config.json"))
    return str(dest)


def write_json(path, data):
    """Write a JSON file (a config, an index, a generation config)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)


def write_safetensors(path, tensors, sparse=False, metadata=None):
    """Write a safetensors file with the given {name: (dtype, shape)} tensors.

    Offsets are packed in insertion order. With ``sparse`` the data section
    is a hole (the file has its full size but costs no disk). Returns the
    number of data bytes, for tests to compare with the profile.
    """
    header = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        size = count * ELEMENT_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        if sparse:
            handle.truncate(8 + len(raw) + offset)
        else:
            handle.write(b"\0" * offset)
    return offset


def write_index(directory, weight_map, total_size=None):
    """Write model.safetensors.index.json; total_size None leaves metadata out."""
    index = {"weight_map": weight_map}
    if total_size is not None:
        index["metadata"] = {"total_size": total_size}
    write_json(os.path.join(directory, "model.safetensors.index.json"), index)
