# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark fleet-status.yml against `ansible -m ping` of the same hosts.

A status run is scheduled (an AWX job every few minutes, a cron) and alerts on
its exit status, so it must be quick: #17 asks for a fleet of 3 hosts in under
15 s on the demo. This script runs, on the demo fleet (`make demo` first), N
status runs and N pings interleaved, and prints both times, their ratio, and
whether every status run judged every replica healthy and changed nothing.

Run from the repository root:  .venv/bin/python benchmarks/status.py [--runs N] [-i inventory/demo]
"""

import argparse
import os
import statistics
import sys

from rerun import ROOT, changed_hosts, run  # benchmarks/ is the script's directory, first on sys.path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-i", "--inventory", default="inventory/demo")
    args = parser.parse_args(argv)
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ.get("PATH", ""),
    )
    status = ["ansible-playbook", "-i", args.inventory, "fleet-status.yml"]
    ping = ["ansible", "-i", args.inventory, "npu_hosts", "-m", "ansible.builtin.ping"]
    statuses, pings, problems = [], [], []
    for unused in range(args.runs):
        seconds, code, output = run(status, env)
        statuses.append(seconds)
        changed = changed_hosts(output)
        if code != 0 or any(changed.values()):
            problems.append("status rc %d, changed %s" % (code, changed))
        seconds, code, unused = run(ping, env)
        pings.append(seconds)
        if code != 0:
            problems.append("ping rc %d" % code)
    status_s, ping_s = statistics.median(statuses), statistics.median(pings)
    print("%-34s %10s %10s" % ("", "median s", "runs"))
    print("%-34s %10.1f %10s" % ("fleet-status.yml", status_s, " ".join("%.1f" % s for s in statuses)))
    print("%-34s %10.1f %10s" % ("ansible -m ping (baseline)", ping_s, " ".join("%.1f" % s for s in pings)))
    print("ratio status / ping: %.1fx; target: under 15 s for the demo's 3 hosts" % (status_s / ping_s))
    print("unhealthy or changed in the status runs: %s" % ("; ".join(problems) if problems else "nothing"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
