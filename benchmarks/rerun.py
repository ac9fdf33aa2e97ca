# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark a no-change re-run of deploy-models.yml against `ansible -m ping` of the same hosts.

A fleet tool is re-run far more often than it changes anything (a schedule,
a CI job, an operator checking), so a re-run that changes nothing must cost
little more than reaching the hosts. This script runs, on the demo fleet
(`make demo` first), a converging deploy, then N idempotent deploys and N
pings interleaved, and prints both times, their ratio, and what the re-runs
changed, copied or built (all must be zero).

Run from the repository root:  .venv/bin/python benchmarks/rerun.py [--runs N] [-i inventory/demo]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# Tasks that would mean the re-run did work it should not.
WORK = ("Copy the server's build context to the host", "Build the Transformers server image on its base")


def run(argv, env):
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    return time.monotonic() - start, proc.returncode, proc.stdout


def changed_hosts(output):
    return dict((host, int(changed)) for host, _ok, changed, _u, _f in RECAP.findall(output))


def work_done(output):
    """Tasks of WORK that ran (not skipped, not 'ok' with nothing to do) on some host."""
    done = []
    for task in WORK:
        block = output.split("TASK [" + task, 1)
        if len(block) == 2:
            body = block[1].split("TASK [", 1)[0]
            if re.search(r"^changed: ", body, re.M):
                done.append(task)
    return done


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
    deploy = ["ansible-playbook", "-i", args.inventory, "deploy-models.yml"]
    ping = ["ansible", "-i", args.inventory, "npu_hosts", "-m", "ansible.builtin.ping"]

    seconds, code, output = run(deploy, env)
    print("converge: %.1f s (rc %d)" % (seconds, code))
    if code != 0:
        print(output[-3000:])
        return 1
    deploys, pings, problems = [], [], []
    for unused in range(args.runs):
        seconds, code, output = run(deploy, env)
        deploys.append(seconds)
        changed = changed_hosts(output)
        if code != 0 or any(changed.values()) or work_done(output):
            problems.append("re-run rc %d, changed %s, work %s" % (code, changed, work_done(output)))
        seconds, code, unused = run(ping, env)
        pings.append(seconds)
        if code != 0:
            problems.append("ping rc %d" % code)
    deploy_s, ping_s = statistics.median(deploys), statistics.median(pings)
    print("%-34s %10s %10s" % ("", "median s", "runs"))
    print("%-34s %10.1f %10s" % ("deploy-models.yml, no change", deploy_s, " ".join("%.1f" % s for s in deploys)))
    print("%-34s %10.1f %10s" % ("ansible -m ping (baseline)", ping_s, " ".join("%.1f" % s for s in pings)))
    print("ratio re-run / ping: %.1fx (target <= 8x)" % (deploy_s / ping_s))
    print("changed, copied or built in the re-runs: %s" % ("; ".join(problems) if problems else "nothing"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
