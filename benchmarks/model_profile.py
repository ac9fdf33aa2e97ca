# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark npu.fleet's model profile on a checkpoint with 50,000 tensors.

Builds, in a temporary directory, a checkpoint whose single safetensors
file lists 50,000 tensors with real byte offsets; the data section is a hole
(``truncate``), so the file has its full logical size but costs no disk.
Then profiles it N times and prints the best and median wall time and the
bytes the process actually read per run (``rchar`` from /proc/self/io, which
counts every read system call), next to the header and file sizes: if tensor
data were read, the bytes read would approach the file size.

Run from the repository root:  python3 benchmarks/model_profile.py [--runs N] [--tensors N]
"""

import argparse
import json
import os
import statistics
import struct
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "max_position_embeddings": 40960,
    "vocab_size": 151936,
    "torch_dtype": "bfloat16",
}


def load_profiler():
    """Import _model_profile (stdlib only, but it imports _safetensors as
    ansible_collections.npu.fleet...) with the tree linked as the collection."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from collection_link import link_collection  # pylint: disable=import-outside-toplevel

    link_collection(ROOT)
    from ansible_collections.npu.fleet.plugins.module_utils import _model_profile  # pylint: disable=import-outside-toplevel

    return _model_profile


def build_checkpoint(directory, tensors):
    """Write config.json and one sparse safetensors file listing ``tensors`` tensors."""
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(CONFIG, handle)
    header = {}
    offset = 0
    for i in range(tensors):
        layer, slot = divmod(i, 1000)
        rows = 256 + (i % 7) * 64  # varied shapes, 128 KiB .. 416 KiB per tensor
        size = rows * 256 * 2
        header["model.layers.%d.block_%d.weight" % (layer % 36, i)] = {
            "dtype": "BF16",
            "shape": [rows, 256],
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    path = os.path.join(directory, "model.safetensors")
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        handle.truncate(8 + len(raw) + offset)
    return path, len(raw), offset


def rchar():
    """Bytes this process has read through read(2)-family calls so far."""
    with open("/proc/self/io", "r", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no rchar line")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tensors", type=int, default=50000)
    args = parser.parse_args()
    profiler = load_profiler()
    with tempfile.TemporaryDirectory(prefix="npu-fleet-bench-") as directory:
        path, header_bytes, data_bytes = build_checkpoint(directory, args.tensors)
        file_bytes = os.path.getsize(path)
        disk_bytes = os.stat(path).st_blocks * 512
        profiler.profile_model(directory)  # warm-up: imports, page cache for the header
        times, reads = [], []
        for _run in range(args.runs):
            before = rchar()
            start = time.perf_counter()
            profile = profiler.profile_model(directory)
            times.append(time.perf_counter() - start)
            reads.append(rchar() - before)
        assert profile["weights_bytes"] == data_bytes, (profile["weights_bytes"], data_bytes)
    print("tensors in header        : %d" % args.tensors)
    print("safetensors file size    : %d bytes (%.1f GiB; %d bytes on disk, sparse)" % (file_bytes, file_bytes / 2**30, disk_bytes))
    print("header size              : %d bytes (+ 8-byte length)" % header_bytes)
    print("weights_bytes (profile)  : %d (matches the tensor offsets)" % data_bytes)
    print("runs                     : %d" % args.runs)
    print("time best / median       : %.1f ms / %.1f ms" % (min(times) * 1000, statistics.median(times) * 1000))
    print("bytes read per run       : min %d, max %d (rchar from /proc/self/io)" % (min(reads), max(reads)))
    print("read / file size         : %.5f%%" % (100.0 * max(reads) / file_bytes))
    print("read beyond the header   : %d bytes (config.json, the 8-byte length, /proc/self/io itself)" % (max(reads) - header_bytes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
