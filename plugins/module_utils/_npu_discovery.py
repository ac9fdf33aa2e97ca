# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""What ``npu.fleet.npu_facts`` finds on a host, as plain Python.

The module only turns its parameters into a call of :func:`discover` and the
result (or :class:`NpuFactsError`) into ``exit_json``/``fail_json``. Everything
that decides something lives here: which npu-smi sub-commands to run and when,
how chips get their physical ids and memory figures, where the driver, CANN,
NNAL and Ascend Docker Runtime versions are read from, which host paths a
container needs, who may open the device nodes. Nothing here imports Ansible; the three things the module
provides are passed in as callables:

``run(argv) -> (rc, stdout, stderr)``
    run a command (``AnsibleModule.run_command``);
``which(name) -> path or None``
    find an executable (``AnsibleModule.get_bin_path``);
``warn(message)``
    report a warning (``AnsibleModule.warn``).

Files and directories of the host are read directly (``os``), as the module
runs on the target.
"""

from __future__ import annotations

import grp
import os
import platform
import re
import stat

from ansible_collections.npu.fleet.plugins.module_utils._ascend_versions import (
    AscendVersionError,
    VersionFileParseError,
    parse_component_version_info,
    parse_docker_daemon_json,
    parse_docker_runtime_install_info,
    parse_driver_version_info,
    parse_firmware_version_info,
    parse_install_info,
    parse_nnal_version_info,
    parse_version_cfg,
    version_key,
)
from ansible_collections.npu.fleet.plugins.module_utils._listen_ports import ListenPortsError, parse_ss_listening
from ansible_collections.npu.fleet.plugins.module_utils._npu_smi import (
    NpuSmiMismatchError,
    NpuSmiParseError,
    apply_phyid_remap,
    merge_chip_map,
    parse_info,
    parse_info_m,
    parse_memory,
    parse_phyid_remap,
)

DEFAULT_NPU_SMI = "/usr/local/bin/npu-smi"
INSTALL_INFO = "/etc/ascend_install.info"
DCMI_DIR = "/usr/local/dcmi"
# The manager nodes every NPU container is given next to its /dev/davinciN.
MANAGER_NODES = ("davinci_manager", "devmm_svm", "hisi_hdc")
FACT_KEYS = (
    "npu_smi_version",
    "npu_smi_layout",
    "chip_count",
    "chips",
    "driver_version",
    "firmware_version",
    "cann_version",
    "cann_toolkit_home",
    "nnal_version",
    "fwkacllib_path",
    "driver_mounts",
    "device_access",
    "docker_runtime",
    "arch",
    "listening_ports",
    "host_tools",
)


class NpuFactsError(Exception):
    """A failure to report with fail_json; ``details`` are extra result keys (cmd, rc, ...)."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


class NpuSmi:
    """Runs npu-smi through ``run(argv) -> (rc, stdout, stderr)`` and parses its output,
    turning every failure into NpuFactsError."""

    def __init__(self, run, path):
        self._run_command = run
        self.path = path

    def _execute(self, args):
        command = [self.path] + list(args)
        rc, out, err = self._run_command(command)
        return " ".join(command), rc, out, err

    @staticmethod
    def _parse(parser, shown, rc, out, err):
        try:
            return parser(out)
        except NpuSmiParseError as error:
            raise NpuFactsError(
                "could not parse the output of `%s`: %s" % (shown, error), cmd=shown, rc=rc, stdout=out, stderr=err
            ) from None

    def run(self, args, parser):
        """Parsed output of ``npu-smi <args>``; a non-zero exit is an error."""
        shown, rc, out, err = self._execute(args)
        if rc != 0:
            raise NpuFactsError(
                "`%s` exited with rc=%d: %s" % (shown, rc, _first_line(err) or _first_line(out) or "(no output)"),
                cmd=shown,
                rc=rc,
                stdout=out,
                stderr=err,
            )
        return self._parse(parser, shown, rc, out, err)

    def try_run(self, args, parser):
        """(parsed, None), or (None, reason) when npu-smi exits non-zero (an unsupported sub-command)."""
        shown, rc, out, err = self._execute(args)
        if rc != 0:
            return None, "`%s` exited with rc=%d: %s" % (shown, rc, _first_line(err) or _first_line(out) or "(no output)")
        return self._parse(parser, shown, rc, out, err), None


def _first_line(text):
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _read(path):
    """File contents, or None when it does not exist."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


class NpuFacts:
    """Collects ansible_facts.npu; every step is a small method so failures name their source.

    ``params`` are the module's parameters (npu_smi_path, ascend_root, docker_daemon_config,
    dev_dir, npu_smi_info_file); ``run``, ``which`` and ``warn`` are the callables
    described at the top of this file.
    """

    def __init__(self, params, run, which, warn):
        self.params = params
        self.run = run
        self.which = which
        self.warn = warn
        self.arch = platform.machine()

    # ----------------------------------------------------------------- chips

    def from_file(self):
        path = self.params["npu_smi_info_file"]
        text = _read(path)
        if text is None:
            raise NpuFactsError("npu_smi_info_file %s does not exist" % path)
        try:
            table = parse_info(text)
        except NpuSmiParseError as error:
            raise NpuFactsError("could not parse %s as npu-smi info output: %s" % (path, error)) from None
        self._warn_unconfirmed(path, table)
        facts = dict.fromkeys(FACT_KEYS)
        facts.update(self._chip_facts(table, table["chips"]))
        return facts

    def _warn_unconfirmed(self, path, table):
        """A saved table whose process part does not report every NPU cannot prove it lists every chip.

        npu-smi always ends ``info`` with the process table, one line or more per NPU; a
        capture without it (or with it cut) may have been cut at a border between NPUs,
        which parses as a smaller host. Live output is refused for this (_require_processes).
        """
        missing = sorted({chip["npu_id"] for chip in table["chips"] if chip["processes"] is None})
        if not missing:
            return
        what = "has no process table" if not table["process_table"] else "reports no processes for NPU %s" % ", ".join(map(str, missing))
        self.warn(
            "npu_smi_info_file %s on host %s %s, so nothing confirms that its %d chip(s) are all the host has: a "
            "capture cut at a border between NPUs reads as a smaller host. Save the complete `npu-smi info` output "
            "(it ends with the process table) or run without npu_smi_info_file" % (path, platform.node() or "?", what, len(table["chips"]))
        )

    def from_host(self):
        npu_smi = NpuSmi(self.run, self._npu_smi_path())
        table = npu_smi.run(["info"], parse_info)
        self._require_processes(table, npu_smi.path)
        mapping = npu_smi.run(["info", "-m"], parse_info_m)
        try:
            chips = merge_chip_map(table["chips"], mapping)
        except NpuSmiMismatchError as error:
            raise NpuFactsError("`%s info` and `%s info -m` disagree: %s" % (npu_smi.path, npu_smi.path, error)) from None
        chips = self._add_phy_ids(npu_smi, chips)
        chips = self._add_memory(npu_smi, chips)
        facts = self._chip_facts(table, chips)
        facts.update(self._versions(table))
        facts.update(self._mounts(npu_smi.path, facts["cann_toolkit_home"]))
        facts["device_access"] = self._device_access()
        facts["docker_runtime"] = self._docker_runtime()
        facts["arch"] = self.arch
        facts["listening_ports"] = self._listening_ports()
        facts["host_tools"] = self._host_tools()
        return facts

    def _host_tools(self):
        """The commands npu.fleet runs on the host besides npu-smi, with their paths (None: missing); preflight
        judges them. The Docker CLI renames a kept container for a rollback and reads a failed one's state and
        logs; ss lists the ports already taken."""
        return {"docker": self.which("docker"), "ss": self.which("ss")}

    def _listening_ports(self):
        """TCP ports something listens on (``ss -Hltn``): the planner keeps them out. None when ss is missing."""
        ss = self.which("ss")
        if ss is None:
            self.warn("ss (iproute2) not found: ports already taken on this host are not known to the planner")
            return None
        rc, out, err = self.run([ss, "-Hltn"])
        if rc != 0:
            raise NpuFactsError("`%s -Hltn` failed (rc %d): %s" % (ss, rc, (err or out).strip()), cmd=[ss, "-Hltn"], rc=rc)
        try:
            return parse_ss_listening(out)
        except ListenPortsError as error:
            raise NpuFactsError("could not read `ss -Hltn` output: %s" % error) from None

    def _npu_smi_path(self):
        path = self.params["npu_smi_path"] or self.which("npu-smi") or DEFAULT_NPU_SMI
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            raise NpuFactsError("npu-smi not found or not executable at %s (set npu_smi_path)" % path)
        return path

    @staticmethod
    def _require_processes(table, path):
        """A live npu-smi reports processes for every NPU; missing ones mean cut output."""
        missing = sorted({chip["npu_id"] for chip in table["chips"] if chip["processes"] is None})
        if missing:
            raise NpuFactsError(
                "`%s info` reported no processes (not even 'No running processes found') for NPU %s;"
                " the output looks truncated" % (path, ", ".join(str(npu) for npu in missing))
            )

    def _davinci_nodes(self):
        try:
            names = os.listdir(self.params["dev_dir"])
        except OSError:
            return []
        return sorted(int(match.group(1)) for match in (re.match(r"^davinci(\d+)$", name) for name in names) if match)

    def _device_access(self):
        """Owner, group and mode of every /dev/davinciN and manager node (see device_access)."""
        names = ["davinci%d" % number for number in self._davinci_nodes()] + list(MANAGER_NODES)
        found = {}
        for name in names:
            try:
                status = os.stat(os.path.join(self.params["dev_dir"], name))
            except OSError:
                continue
            found["/dev/" + name] = (status.st_uid, status.st_gid, status.st_mode)
        return device_access(found, _group_name)

    def _add_phy_ids(self, npu_smi, chips):
        """Physical ids the documented way: phyid-remap -p N for each /dev/davinciN."""
        if all(chip["phy_id"] is not None for chip in chips):
            return chips
        nodes = self._davinci_nodes()
        remaps = []
        for node in nodes:
            remap, problem = npu_smi.try_run(["info", "-t", "phyid-remap", "-p", str(node)], parse_phyid_remap)
            if remap is None:
                self.warn("cannot derive physical ids, device paths stay null: %s" % problem)
                return chips
            remaps.append(remap)
        try:
            chips = apply_phyid_remap(chips, remaps)
        except NpuSmiMismatchError as error:
            raise NpuFactsError("`%s info -t phyid-remap` contradicts npu-smi info: %s" % (npu_smi.path, error)) from None
        unknown = ["NPU %s chip %s" % (c["npu_id"], c["chip_id"]) for c in chips if c["phy_id"] is None]
        if unknown:
            self.warn(
                "no %s/davinci<N> node maps to %s; their device paths stay null" % (self.params["dev_dir"].rstrip("/"), ", ".join(unknown))
            )
        return chips

    def _add_memory(self, npu_smi, chips):
        """Ask -t memory only for NPUs whose table rows lack the memory figures."""
        lacking = sorted({chip["npu_id"] for chip in chips if chip["memory_total_mb"] is None})
        for npu_id in lacking:
            memory = npu_smi.run(["info", "-t", "memory", "-i", str(npu_id)], parse_memory)
            for chip in chips:
                if chip["npu_id"] == npu_id and chip["memory_total_mb"] is None:
                    _fill_memory(chip, memory["chips"])
        return chips

    @staticmethod
    def _chip_facts(table, chips):
        return {
            "npu_smi_version": table["npu_smi_version"],
            "npu_smi_layout": table["layout"],
            "chip_count": len(chips),
            "chips": [_public_chip(chip) for chip in chips],
        }

    # -------------------------------------------------------------- versions

    def _read_version(self, path, parser, key="version"):
        text = _read(path)
        if text is None:
            return None
        try:
            return parser(text)[key]
        except VersionFileParseError as error:
            self.warn("could not read %s: %s" % (path, error))
            return None

    def _versions(self, table):
        root = self.params["ascend_root"]
        driver = self._read_version(os.path.join(root, "driver", "version.info"), parse_driver_version_info)
        cann_version, toolkit_home = self._cann(root)
        return {
            "driver_version": driver or table["driver_version"],
            "firmware_version": self._read_version(os.path.join(root, "firmware", "version.info"), parse_firmware_version_info),
            "cann_version": cann_version,
            "cann_toolkit_home": toolkit_home,
            "nnal_version": self._nnal(root),
        }

    def _arch_dirs(self):
        return [self.arch + "-linux"] + (["arm64-linux"] if self.arch == "aarch64" else [])

    def _toolkit_homes(self, root):
        """ascend-toolkit/latest first, then cann-<version> directories, newest first."""
        homes = [os.path.join(root, "ascend-toolkit", "latest")]
        versioned = []
        for name in _listdir(root):
            if name.startswith("cann-"):
                versioned.append((_sort_key(name[len("cann-") :]), os.path.join(root, name)))
        homes.extend(path for _key, path in sorted(versioned, reverse=True))
        return [home for home in homes if os.path.isdir(home)]

    def _cann(self, root):
        for home in self._toolkit_homes(root):
            arch_dirs = self._arch_dirs() + sorted(d for d in _listdir(home) if d.endswith("-linux"))
            for arch_dir in arch_dirs:
                version = self._read_version(os.path.join(home, arch_dir, "ascend_toolkit_install.info"), parse_install_info)
                if version:
                    return version, home
            version = self._read_version(os.path.join(home, "version.cfg"), parse_version_cfg)
            if version:
                return version, home
            version = self._read_version(os.path.join(home, "toolkit", "version.info"), parse_component_version_info, "version_dir")
            if version:
                return version, home
        return None, None

    def _nnal(self, root):
        base = os.path.join(root, "nnal", "atb")
        version = self._read_version(os.path.join(base, "latest", "version.info"), parse_nnal_version_info)
        if version:
            return version
        found = [self._read_version(os.path.join(base, name, "version.info"), parse_nnal_version_info) for name in _listdir(base)]
        found = [item for item in found if item]
        return max(found, key=_sort_key) if found else None

    # ---------------------------------------------------------------- mounts

    def _fwkacllib(self, toolkit_home):
        home = toolkit_home or os.path.join(self.params["ascend_root"], "ascend-toolkit", "latest")
        candidates = [os.path.join(home, "fwkacllib")]
        candidates += [os.path.join(home, arch_dir, "fwkacllib") for arch_dir in self._arch_dirs()]
        candidates.append(os.path.join(home, "compiler", "lib64"))
        candidates += [os.path.join(home, arch_dir, "lib64") for arch_dir in self._arch_dirs()]
        return next((path for path in candidates if os.path.isdir(path)), candidates[0])

    def _mounts(self, npu_smi_path, toolkit_home):
        root = self.params["ascend_root"]
        fwkacllib = self._fwkacllib(toolkit_home)
        paths = [
            os.path.join(root, "driver", "lib64"),
            os.path.join(root, "driver", "version.info"),
            INSTALL_INFO,
            DCMI_DIR,
            npu_smi_path,
            fwkacllib,
        ]
        return {"fwkacllib_path": fwkacllib, "driver_mounts": {path: os.path.exists(path) for path in paths}}

    # ---------------------------------------------------------------- docker

    def _daemon(self):
        path = self.params["docker_daemon_config"]
        text = _read(path)
        if text is None:
            return {"ascend_runtime_registered": False, "default_runtime": None, "ascend_runtime_path": None}
        try:
            return parse_docker_daemon_json(text)
        except VersionFileParseError as error:
            self.warn("could not read %s: %s" % (path, error))
            return {"ascend_runtime_registered": None, "default_runtime": None, "ascend_runtime_path": None}

    def _docker_runtime(self):
        daemon = self._daemon()
        dirs = [os.path.join(self.params["ascend_root"], "Ascend-Docker-Runtime")]
        if daemon.get("ascend_runtime_path"):
            dirs.append(os.path.dirname(daemon["ascend_runtime_path"]))
        installed, version = False, None
        for directory in dirs:
            info = os.path.join(directory, "ascend_docker_runtime_install.info")
            if os.path.isfile(info) or os.path.isfile(os.path.join(directory, "ascend-docker-runtime")):
                installed = True
                version = version or self._read_version(info, parse_docker_runtime_install_info)
        return {
            "installed": installed,
            "version": version,
            "registered_in_daemon_json": daemon["ascend_runtime_registered"],
            "default_runtime": daemon["default_runtime"],
        }


def _group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except (KeyError, OverflowError):
        return None


def device_access(nodes, group_name=None):
    """The ``device_access`` fact: who may open the NPU device nodes of the host.

    ``nodes`` maps each node's ``/dev`` path to ``(uid, gid, st_mode)`` as
    ``os.stat`` gives them (a missing node is left out); ``group_name(gid)``
    names a group (None when the host has no name for it). Docker gives a
    container the host node with its owner, group and mode (``--device``), and
    the Ascend Docker Runtime bind-mounts it, so these decide who opens it
    inside. Returns ``{"nodes": {path: {"uid", "gid", "mode"}}, "gid", "group"}``:
    ``mode`` as four octal digits (``"0660"``); ``gid`` and ``group`` the group
    all nodes share (on a real host the driver's running group, HwHiAiUser),
    None when they differ or there is no node.
    """
    public = {}
    for path in sorted(nodes or {}):
        uid, gid, mode = nodes[path]
        public[path] = {"uid": int(uid), "gid": int(gid), "mode": "%04o" % stat.S_IMODE(int(mode))}
    gids = set(node["gid"] for node in public.values())
    gid = gids.pop() if len(gids) == 1 else None
    return {"nodes": public, "gid": gid, "group": (group_name(gid) if group_name else None) if gid is not None else None}


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _sort_key(version):
    """Ascend version order; names that are not versions sort first."""
    try:
        return (1, version_key(version))
    except AscendVersionError:
        return (0, ())


def _fill_memory(chip, memory_chips):
    matching = [entry for entry in memory_chips if entry["chip_id"] in (chip["chip_id"], None)]
    if len(matching) == 1:
        chip["memory_total_mb"] = matching[0]["memory_total_mb"]
        chip["memory_kind"] = matching[0]["memory_kind"]


_CHIP_KEYS = (
    "npu_id",
    "chip_id",
    "logic_id",
    "phy_id",
    "phy_id_source",
    "device",
    "name",
    "health",
    "power_w",
    "temp_c",
    "aicore_pct",
    "bus_id",
    "memory_total_mb",
    "memory_used_mb",
    "memory_kind",
    "hugepages_total",
    "hugepages_used",
    "processes",
)


def _public_chip(chip):
    return {key: chip.get(key) for key in _CHIP_KEYS}


def discover(params, run, which, warn):
    """ansible_facts.npu of this host, or of the saved output named by ``npu_smi_info_file``.

    Raises NpuFactsError (message and extra result keys for fail_json) when discovery fails.
    """
    collector = NpuFacts(params, run, which, warn)
    return collector.from_file() if params["npu_smi_info_file"] else collector.from_host()
