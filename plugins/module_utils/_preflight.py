# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""Judge one Ascend host from its discovered facts: every problem at once.

PRIVATE: used by the ``npu.fleet.preflight_report`` filter and the planner; the
API may change without notice.

Input is what ``npu.fleet.npu_facts`` returns (or the error it failed with)
plus what the Docker engine answered. Output is the ``npu_preflight`` fact:
``ok`` (no problem of severity ``error``), ``problems`` (each with ``code``,
``severity``, ``message``, ``fix``), and the chips the planner may use.
A chip-level fault (health, foreign processes) removes that chip only; a
host-level fault (no driver, missing mounts, no Docker engine) removes the host.
"""

from ansible_collections.npu.fleet.plugins.module_utils._busy import foreign_processes
from ansible_collections.npu.fleet.plugins.module_utils._host_stack import release_line, stack_mismatch

__all__ = ["HOST_PATHS", "preflight_verdict", "release_line"]

ERROR = "error"
WARNING = "warning"

# Host paths an NPU container is given -> (problem code, what breaks without
# it, the fix). npu_facts reports driver_mounts as {path: exists}; a path is
# classified by its ending, the toolkit's ACL library by npu.fwkacllib_path.
# Sources: vllm-ascend docs/source/quick_start.md (the docker run mount list) and
# a public field report (Feb 2026, five models on 910B by hand: aclInit 107001 without fwkacllib).
HOST_PATHS = (
    (
        "driver/lib64",
        "DRIVER_LIB64_MISSING",
        "containers cannot load libascend_hal.so",
        "install the Ascend NPU driver package (Ascend-hdk-*-npu-driver) on the host",
    ),
    (
        "driver/version.info",
        "DRIVER_VERSION_INFO_MISSING",
        "CANN in the container cannot check the driver version",
        "reinstall the Ascend NPU driver; it writes <ascend_root>/driver/version.info",
    ),
    (
        "ascend_install.info",
        "ASCEND_INSTALL_INFO_MISSING",
        "the runtime in the container cannot find the driver install path",
        "reinstall the Ascend NPU driver; it writes /etc/ascend_install.info",
    ),
    (
        "dcmi",
        "DCMI_MISSING",
        "npu-smi and the runtime in the container cannot query the chips",
        "install the driver with its dcmi component (/usr/local/dcmi)",
    ),
    (
        "npu-smi",
        "NPU_SMI_MISSING",
        "npu-smi cannot be mounted into containers for health checks",
        "install the Ascend NPU driver, which provides /usr/local/bin/npu-smi",
    ),
)
FWKACLLIB = (
    "fwkacllib",
    "FWKACLLIB_MISSING",
    "aclInit fails with error 107001 in containers that mount the host toolkit",
    "install the CANN toolkit with its fwkacllib component (Ascend-cann-toolkit --full)",
)
UNKNOWN_PATH = ("", "HOST_PATH_MISSING", "containers that mount it will not start", "create or install it on the host")

HEALTHY = "OK"
# Health words npu-smi prints that still leave a chip usable, with a warning.
DEGRADED = ("Warning",)


def _problem(code, severity, message, fix, **extra):
    problem = {"code": code, "severity": severity, "message": message, "fix": fix}
    problem.update(extra)
    return problem


def _chip_label(chip):
    return "NPU %s chip %s (%s)" % (chip.get("npu_id"), chip.get("chip_id"), chip.get("device"))


def _chip_problems(chips, managed_pids, managed_devices):
    """Health and foreign-process findings, one problem per affected chip."""
    problems = []
    for chip in chips:
        health = str(chip.get("health") or "unknown")
        if health != HEALTHY:
            severity = WARNING
            usable = health in DEGRADED
            problems.append(
                _problem(
                    "CHIP_UNHEALTHY",
                    severity,
                    "%s reports health %s; %s" % (_chip_label(chip), health, "it stays usable" if usable else "it will not be used"),
                    "inspect with `npu-smi info -t health -i %s` and clear the alarm (or reset the chip) before "
                    "placing models on it" % chip.get("npu_id"),
                    device=chip.get("device"),
                    usable=usable,
                )
            )
        foreign = foreign_processes(chip, chip.get("device") in managed_devices, managed_pids)
        if foreign:
            owners = ", ".join("%s (pid %s, %s MB)" % (proc.get("name") or "?", proc.get("pid"), proc.get("memory_mb")) for proc in foreign)
            problems.append(
                _problem(
                    "CHIP_BUSY",
                    WARNING,
                    "%s runs processes npu.fleet did not start: %s; it will not be used" % (_chip_label(chip), owners),
                    "stop those processes or list the device in reserved_devices if they are meant to stay",
                    device=chip.get("device"),
                    usable=False,
                )
            )
    return problems


def _version_problems(npu):
    problems = []
    if not npu.get("driver_version"):
        problems.append(
            _problem(
                "DRIVER_VERSION_UNKNOWN",
                ERROR,
                "the driver version could not be read from <ascend_root>/driver/version.info",
                "install or repair the Ascend NPU driver",
            )
        )
    if not npu.get("firmware_version"):
        problems.append(
            _problem(
                "FIRMWARE_VERSION_UNKNOWN",
                WARNING,
                "the firmware version could not be read from <ascend_root>/firmware/version.info",
                "install the Ascend NPU firmware package matching the driver",
            )
        )
    cann, nnal = npu.get("cann_version"), npu.get("nnal_version")
    if not cann:
        problems.append(
            _problem(
                "CANN_MISSING",
                ERROR,
                "no CANN toolkit found under <ascend_root>/ascend-toolkit",
                "install Ascend-cann-toolkit (and the ops package for this chip) on the host",
            )
        )
    if not nnal:
        problems.append(
            _problem(
                "NNAL_MISSING",
                WARNING,
                "no NNAL (ATB) found under <ascend_root>/nnal/atb; images that mount the host NNAL fail with libatb.so errors",
                "install Ascend-cann-nnal of the same release as CANN",
            )
        )
    # One rule with image selection (_host_stack): the fix never leaves NNAL ahead of the toolkit.
    mismatch = stack_mismatch(cann, nnal)
    if mismatch:
        problems.append(_problem("NNAL_CANN_MISMATCH", ERROR, mismatch["message"], mismatch["fix"]))
    return problems


def _classify_path(path, fwkacllib_path):
    if fwkacllib_path and path == fwkacllib_path:
        return FWKACLLIB
    for entry in HOST_PATHS:
        if path.rstrip("/").endswith(entry[0]):
            return entry
    return UNKNOWN_PATH


def _path_problems(mounts, fwkacllib_path):
    problems = []
    for path in sorted(mounts):
        if mounts[path]:
            continue
        code, consequence, fix = _classify_path(path, fwkacllib_path)[1:]
        problems.append(_problem(code, ERROR, "%s is missing: %s" % (path, consequence), fix, path=path))
    return problems


def _runtime_problems(runtime, require_ascend_runtime):
    if not require_ascend_runtime:
        return []
    runtime = runtime or {}
    if not runtime.get("installed"):
        return [
            _problem(
                "ASCEND_RUNTIME_MISSING",
                ERROR,
                "the Ascend Docker Runtime is not installed and preflight_require_ascend_runtime is true",
                "install Ascend-docker-runtime (MindCluster) or set preflight_require_ascend_runtime: false",
            )
        ]
    if not runtime.get("registered_in_daemon_json"):
        return [
            _problem(
                "ASCEND_RUNTIME_UNREGISTERED",
                ERROR,
                "the Ascend Docker Runtime %s is installed but not registered in daemon.json" % (runtime.get("version") or ""),
                "re-run the runtime installer with --install, or add the 'ascend' runtime to /etc/docker/daemon.json and restart dockerd",
            )
        ]
    return []


def _tool_problems(tools):
    """The commands the serve and probe stages run on the host (facts ``host_tools``; absent: not checked)."""
    if not isinstance(tools, dict):
        return []
    problems = []
    if "docker" in tools and not tools["docker"]:
        problems.append(
            _problem(
                "DOCKER_CLI_MISSING",
                ERROR,
                "the Docker CLI (docker) is not on the host's PATH: a rollback renames the kept container with it and "
                "the probe reads a failed container's state and logs with it",
                "install the Docker CLI (docker-ce-cli, or docker.io on Debian/Ubuntu) on the host",
            )
        )
    if "ss" in tools and not tools["ss"]:
        problems.append(
            _problem(
                "SS_MISSING",
                WARNING,
                "ss is not on the host's PATH: ports something else already listens on are not known to the planner",
                "install iproute2 on the host",
            )
        )
    return problems


def _docker_problem(docker_error):
    """community.docker needs Python `requests` on the host; say so rather than 'Docker is down'."""
    text = str(docker_error)
    if "requests" in text and ("import" in text or "Python library" in text):
        return _problem(
            "DOCKER_PYTHON_REQUESTS_MISSING",
            ERROR,
            "community.docker cannot talk to the Docker engine: Python `requests` is missing on the host (%s)" % text,
            "install python3-requests (apt/dnf) for the interpreter Ansible uses on the host",
        )
    return _problem(
        "DOCKER_UNAVAILABLE",
        ERROR,
        "the Docker engine did not answer: %s" % text,
        "install and start Docker on the host (systemctl enable --now docker)",
    )


def _chip_line(chip, usable):
    """One line per chip for humans: device, name, health, memory, verdict."""
    return "%-14s %-9s %-8s %s %s/%s MB  %s" % (
        chip.get("device") or "(no device)",
        chip.get("name"),
        chip.get("health"),
        chip.get("memory_kind") or "",
        chip.get("memory_used_mb"),
        chip.get("memory_total_mb"),
        "usable" if usable else "not used",
    )


def preflight_verdict(
    npu=None, npu_error=None, docker_error=None, require_ascend_runtime=False, managed_pids=(), reserved_devices=(), managed_devices=()
):
    """Return the ``npu_preflight`` fact for one host.

    ``npu`` is the npu_facts result (None when discovery failed, with the
    failure text in ``npu_error``); ``docker_error`` is None when the Docker
    engine answered, else what it said; ``managed_devices`` the device nodes
    npu.fleet's running containers hold (their processes are not foreign).
    """
    problems = []
    npu = npu or {}
    chips = list(npu.get("chips") or [])
    if npu_error:
        problems.append(
            _problem(
                "NPU_DISCOVERY_FAILED",
                ERROR,
                "NPU discovery failed: %s" % npu_error,
                "run npu-smi info on the host; install or repair the driver so that it answers",
            )
        )
    elif not chips:
        problems.append(
            _problem(
                "NO_NPU_FOUND",
                ERROR,
                "npu-smi answered but listed no NPU chip",
                "check that the driver sees the cards (`lspci | grep -i d80`) and reload it",
            )
        )
    if not npu_error:
        problems.extend(_version_problems(npu))
        problems.extend(_path_problems(npu.get("driver_mounts") or {}, npu.get("fwkacllib_path")))
        problems.extend(_runtime_problems(npu.get("docker_runtime"), require_ascend_runtime))
        problems.extend(_tool_problems(npu.get("host_tools")))
    if docker_error:
        problems.append(_docker_problem(docker_error))
    managed = set(managed_pids)
    problems.extend(_chip_problems(chips, managed, set(managed_devices)))
    reserved = set(reserved_devices)
    unusable = set(p["device"] for p in problems if "device" in p and not p.get("usable"))
    ok = not any(p["severity"] == ERROR for p in problems)
    usable = [chip.get("device") for chip in chips if chip.get("device") not in unusable | reserved] if ok else []
    return {
        "ok": ok,
        "chip_lines": [_chip_line(chip, chip.get("device") in usable) for chip in chips],
        "problems": problems,
        "error_codes": sorted(set(p["code"] for p in problems if p["severity"] == ERROR)),
        "warning_codes": sorted(set(p["code"] for p in problems if p["severity"] == WARNING)),
        "usable_devices": usable,
        "excluded_devices": sorted(unusable | (reserved & set(chip.get("device") for chip in chips))),
    }
