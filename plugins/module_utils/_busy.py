# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""When a chip is busy: the one rule preflight and the planner share.

npu-smi lists the processes on each chip by host PID. A chip is busy when it
runs a process npu.fleet did not start. Ours are known by the labels of our
containers (the devices each one holds), read from the Docker engine once
per run; PIDs are known only where a caller lists them. Before this rule had
one home, preflight flagged our own replicas' chips CHIP_BUSY and the
planner undid it.
"""

__all__ = ["foreign_processes"]


def foreign_processes(chip, held_by_us=False, our_pids=None):
    """The processes on ``chip`` (npu_facts chip) that npu.fleet did not start.

    ``held_by_us``: one of our running containers holds this chip. Then, with
    ``our_pids`` given, only those PIDs are ours (someone else may share the
    chip); without them every process on it is taken to be the replica's own.
    A chip no container of ours holds: only ``our_pids`` are ours.
    """
    processes = [proc for proc in chip.get("processes") or [] if isinstance(proc, dict)]
    pids = set(our_pids or ())
    if held_by_us and not pids:
        return []
    return [proc for proc in processes if proc.get("pid") not in pids]
