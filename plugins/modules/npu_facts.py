#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: npu_facts
short_description: Discover Ascend NPUs, their driver/CANN/NNAL versions and container mounts
version_added: 0.1.0
description:
  - Runs C(npu-smi info) and C(npu-smi info -m) on the target and returns one entry per NPU chip
    (ids, C(/dev/davinci<N>) device node, health, power, temperature, AI Core usage, memory, processes)
    under RV(ansible_facts.npu).
  - Reads the driver, firmware, CANN toolkit and NNAL/ATB version files under O(ascend_root), checks
    which host paths a container needs bind-mounted, and whether the Ascend Docker Runtime is installed
    and registered in the Docker daemon configuration.
  - The device node of a chip follows its B(physical) id (Huawei npu-smi reference for
    C(npu-smi info -t phyid-remap) "obtain the physical ID with ls /dev/davinci*";
    Ascend Docker Runtime C(runtime/main.go) and Ascend Device Plugin C(pkg/server/plugin.go) mount
    C(/dev/davinci<physical id>)). Only the A3 layouts print that id. On other hosts the module derives it
    the documented way, with C(npu-smi info -t phyid-remap -p <N>) for every C(/dev/davinci<N>) under
    O(dev_dir), and says where each id came from in RV(ansible_facts.npu.chips[].phy_id_source).
  - Never changes anything. Fails, naming the command, its exit code and the first offending output line,
    when C(npu-smi) exits non-zero or prints something that does not parse.
author:
  - npu.fleet engineers (@npu-fleet)
options:
  npu_smi_path:
    description:
      - Path of the C(npu-smi) binary.
      - When not set, C(npu-smi) found on E(PATH) (and the usual sbin directories), else C(/usr/local/bin/npu-smi).
    type: path
  ascend_root:
    description:
      - Directory the Ascend driver, firmware, CANN toolkit, NNAL and Ascend Docker Runtime are installed under.
    type: path
    default: /usr/local/Ascend
  docker_daemon_config:
    description:
      - Docker daemon configuration checked for a registered Ascend runtime.
    type: path
    default: /etc/docker/daemon.json
  dev_dir:
    description:
      - Directory holding the C(davinci<N>) device nodes, listed to derive physical ids with C(npu-smi info -t phyid-remap).
      - Returned device paths always name C(/dev/davinci<N>); change this only for tests or chroots.
    type: path
    default: /dev
  npu_smi_info_file:
    description:
      - Parse this saved C(npu-smi info) output instead of running C(npu-smi).
      - Then only the chip and process data of that output is returned (its banner gives
        RV(ansible_facts.npu.npu_smi_version)); the version, mount, Docker runtime and arch keys are V(null),
        and RV(ansible_facts.npu.chips[].device) is V(null) unless the output prints physical ids (A3).
    type: path
attributes:
  check_mode:
    support: full
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    support: none
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  platform:
    support: full
    platforms: posix
    description: Target OS/families that can be operated against.
notes:
  - Calls C(npu-smi info), C(npu-smi info -m), one C(npu-smi info -t phyid-remap -p <N>) per device node when the
    table lacks physical ids, and C(npu-smi info -t memory -i <id>) only for NPUs whose table row has no memory figures.
  - When C(npu-smi) does not know C(phyid-remap) (exit code not 0), a warning is issued and
    RV(ansible_facts.npu.chips[].phy_id) and RV(ansible_facts.npu.chips[].device) stay V(null).
  - Version ordering rules and every npu-smi format covered are listed in the collection's C(docs/npu-smi.md).
seealso:
  - name: npu-smi phyid-remap reference (Atlas 200I A2 25.2.0)
    description: Physical id of a chip is the N of /dev/davinciN.
    link: https://www.hiascend.com/document/detail/zh/Atlas%20200I%20A2/2520/re/npu/npusmi_059.html
"""

EXAMPLES = r"""
- name: Discover the NPUs of every Ascend host
  npu.fleet.npu_facts:

- name: Show the device node of each chip
  ansible.builtin.debug:
    msg: "{{ ansible_facts['npu']['chips'] | map(attribute='device') | list }}"

- name: Use an npu-smi that is not on PATH and a non-default install root
  npu.fleet.npu_facts:
    npu_smi_path: /usr/local/sbin/npu-smi
    ascend_root: /opt/Ascend

- name: Parse an npu-smi info output saved earlier (no command is run)
  npu.fleet.npu_facts:
    npu_smi_info_file: /var/tmp/npu-smi-info.txt

- name: Refuse hosts with an unhealthy chip
  ansible.builtin.assert:
    that:
      - ansible_facts['npu']['chips'] | rejectattr('health', 'equalto', 'OK') | list | length == 0
    fail_msg: "unhealthy chips: {{ ansible_facts['npu']['chips'] | rejectattr('health', 'equalto', 'OK') | map(attribute='device') | list }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    npu:
      description: What was found about the NPUs of the host.
      returned: always
      type: dict
      contains:
        npu_smi_version:
          description: Version of the npu-smi tool, from the banner of C(npu-smi info); V(null) when the output has no banner.
          returned: always
          type: str
          sample: 25.0.rc1.1
        npu_smi_layout:
          description:
            - Table layout of C(npu-smi info).
            - V(a2) 910A/910B (C(Chip) column), V(a3) Atlas A3 (C(Chip Phy-ID)), V(310) 310/310B/310P (C(Chip Device)),
              V(a5) Ascend 950 (separate C(NPU ID) and C(Name) columns).
          returned: always
          type: str
          sample: a2
        chip_count:
          description: Number of chips (not NPU cards; an Atlas 300I Duo card or an A3 NPU holds two).
          returned: always
          type: int
          sample: 8
        chips:
          description: One entry per chip, in the order of C(npu-smi info).
          returned: always
          type: list
          elements: dict
          contains:
            npu_id:
              description: NPU (card) id, the C(-i) argument of npu-smi. Not necessarily 0..N-1 (V(96), V(1536), gaps).
              type: int
              sample: 0
            chip_id:
              description: Chip index within the NPU, the C(-c) argument of npu-smi.
              type: int
              sample: 0
            logic_id:
              description: Chip logic id from C(npu-smi info -m); what the CANN runtime numbers devices by on this host.
              type: int
              sample: 0
            phy_id:
              description: Chip physical id; V(null) when neither the output nor C(phyid-remap) gave it.
              type: int
              sample: 0
            phy_id_source:
              description: Where RV(ansible_facts.npu.chips[].phy_id) came from.
              type: str
              choices: [table, info -m, phyid-remap]
              sample: phyid-remap
            device:
              description: Device node a container must be given for this chip, C(/dev/davinci<phy_id>); V(null) when the physical id is unknown.
              type: str
              sample: /dev/davinci0
            name:
              description: Chip name as the table prints it.
              type: str
              sample: 910B4
            health:
              description: Health as printed (V(OK), V(Warning), V(Alarm), V(Critical), V(UNKNOWN)); V(null) for V(NA).
              type: str
              sample: OK
            power_w:
              description: Power draw in watts; V(null) when npu-smi prints V(NA) or V(-) (310P cards, second die of an A3 NPU).
              type: float
              sample: 87.2
            temp_c:
              description: Chip temperature in degrees Celsius.
              type: int
              sample: 33
            aicore_pct:
              description: AI Core usage in percent (C(NPU Util) on Ascend 950).
              type: int
              sample: 0
            bus_id:
              description: PCI bus id as printed; V(null) for V(NA) (310B SoC boards).
              type: str
              sample: "0000:C1:00.0"
            memory_total_mb:
              description: Device memory in MB, HBM when the chip has HBM, else DDR.
              type: int
              sample: 32768
            memory_used_mb:
              description: Device memory in use in MB.
              type: int
              sample: 2654
            memory_kind:
              description: Which memory RV(ansible_facts.npu.chips[].memory_total_mb) counts.
              type: str
              choices: [HBM, DDR]
              sample: HBM
            hugepages_total:
              description: Hugepages of the chip (2 MB pages).
              type: int
              sample: 0
            hugepages_used:
              description: Hugepages in use.
              type: int
              sample: 0
            processes:
              description: Processes on the chip; empty when npu-smi reports none; V(null) only when a parsed file has no process table.
              type: list
              elements: dict
              contains:
                pid:
                  description: Process id (host pid namespace of npu-smi).
                  type: int
                  sample: 1036531
                name:
                  description: Process name, truncated to 15 characters by npu-smi; V(null) when empty (processes in containers).
                  type: str
                  sample: python3
                memory_mb:
                  description: Device memory of the process in MB.
                  type: int
                  sample: 53312
        driver_version:
          description:
            - C(Version) of O(ascend_root)/driver/version.info; when that file is missing, the driver version in the banner of C(npu-smi info).
            - V(null) with O(npu_smi_info_file).
          returned: always
          type: str
          sample: 25.0.rc1.1
        firmware_version:
          description: C(Version) of O(ascend_root)/firmware/version.info; V(null) when absent.
          returned: always
          type: str
          sample: 7.7.0.1.231
        cann_version:
          description:
            - CANN toolkit version from C(ascend_toolkit_install.info) (else C(version.cfg), else C(toolkit/version.info)) under
              O(ascend_root)/ascend-toolkit/latest, or under the newest O(ascend_root)/cann-<version> (CANN 8.5 and later).
            - V(null) when no toolkit is installed.
          returned: always
          type: str
          sample: 8.5.0
        cann_toolkit_home:
          description: Directory the CANN version was read from; V(null) without a toolkit.
          returned: always
          type: str
          sample: /usr/local/Ascend/ascend-toolkit/latest
        nnal_version:
          description: C(Ascend-cann-atb) of O(ascend_root)/nnal/atb/latest/version.info (else the newest nnal/atb/<version>); V(null) when absent.
          returned: always
          type: str
          sample: 8.5.0
        fwkacllib_path:
          description:
            - The CANN framework ACL library directory looked for, also a key of RV(ansible_facts.npu.driver_mounts).
            - First existing of C(<toolkit>/fwkacllib), C(<toolkit>/<arch>-linux/fwkacllib) (CANN up to 7.x),
              C(<toolkit>/compiler/lib64), C(<toolkit>/<arch>-linux/lib64) (newer CANN); the first of them when none exists.
          returned: always
          type: str
          sample: /usr/local/Ascend/ascend-toolkit/latest/fwkacllib
        driver_mounts:
          description:
            - Host path -> whether it exists, for the paths an NPU container is given
              (driver C(lib64), driver C(version.info), C(/etc/ascend_install.info), C(/usr/local/dcmi), the npu-smi binary)
              and RV(ansible_facts.npu.fwkacllib_path).
            - V(null) with O(npu_smi_info_file).
          returned: always
          type: dict
          sample:
            /usr/local/Ascend/driver/lib64: true
            /usr/local/Ascend/driver/version.info: true
            /etc/ascend_install.info: true
            /usr/local/dcmi: true
            /usr/local/bin/npu-smi: true
            /usr/local/Ascend/ascend-toolkit/latest/fwkacllib: false
        docker_runtime:
          description: Ascend Docker Runtime state; V(null) with O(npu_smi_info_file).
          returned: always
          type: dict
          contains:
            installed:
              description: Its C(ascend_docker_runtime_install.info) or binary exists.
              type: bool
              sample: true
            version:
              description: C(version) of C(ascend_docker_runtime_install.info) as written (C(v5.0.RC3)); V(null) when not installed.
              type: str
              sample: v5.0.RC3
            registered_in_daemon_json:
              description:
                - O(docker_daemon_config) has a runtime named C(ascend) or pointing at C(ascend-docker-runtime).
                - V(false) when the file is missing, V(null) (with a warning) when it is not valid JSON.
              type: bool
              sample: true
            default_runtime:
              description: C(default-runtime) of O(docker_daemon_config), V(null) when not set.
              type: str
              sample: ascend
        arch:
          description: Machine architecture of the target; V(null) with O(npu_smi_info_file).
          returned: always
          type: str
          sample: aarch64
"""

import os
import platform
import re

from ansible.module_utils.basic import AnsibleModule
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
FACT_KEYS = ("npu_smi_version", "npu_smi_layout", "chip_count", "chips", "driver_version", "firmware_version",
             "cann_version", "cann_toolkit_home", "nnal_version", "fwkacllib_path", "driver_mounts",
             "docker_runtime", "arch")


class NpuFactsError(Exception):
    """A failure to report with fail_json; ``details`` are extra result keys (cmd, rc, ...)."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


class NpuSmi:
    """Runs npu-smi and parses its output, turning every failure into NpuFactsError."""

    def __init__(self, module, path):
        self.module = module
        self.path = path

    def _execute(self, args):
        command = [self.path] + list(args)
        rc, out, err = self.module.run_command(command)
        return " ".join(command), rc, out, err

    @staticmethod
    def _parse(parser, shown, rc, out, err):
        try:
            return parser(out)
        except NpuSmiParseError as error:
            raise NpuFactsError("could not parse the output of `%s`: %s" % (shown, error), cmd=shown, rc=rc, stdout=out, stderr=err) from None

    def run(self, args, parser):
        """Parsed output of ``npu-smi <args>``; a non-zero exit is an error."""
        shown, rc, out, err = self._execute(args)
        if rc != 0:
            raise NpuFactsError("`%s` exited with rc=%d: %s" % (shown, rc, _first_line(err) or _first_line(out) or "(no output)"),
                                cmd=shown, rc=rc, stdout=out, stderr=err)
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
    """Collects ansible_facts.npu; every step is a small method so failures name their source."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
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
        facts = dict.fromkeys(FACT_KEYS)
        facts.update(self._chip_facts(table, table["chips"]))
        return facts

    def from_host(self):
        npu_smi = NpuSmi(self.module, self._npu_smi_path())
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
        facts["docker_runtime"] = self._docker_runtime()
        facts["arch"] = self.arch
        return facts

    def _npu_smi_path(self):
        path = self.params["npu_smi_path"] or self.module.get_bin_path("npu-smi") or DEFAULT_NPU_SMI
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            raise NpuFactsError("npu-smi not found or not executable at %s (set npu_smi_path)" % path)
        return path

    @staticmethod
    def _require_processes(table, path):
        """A live npu-smi reports processes for every NPU; missing ones mean cut output."""
        missing = sorted({chip["npu_id"] for chip in table["chips"] if chip["processes"] is None})
        if missing:
            raise NpuFactsError("`%s info` reported no processes (not even 'No running processes found') for NPU %s;"
                                " the output looks truncated" % (path, ", ".join(str(npu) for npu in missing)))

    def _davinci_nodes(self):
        try:
            names = os.listdir(self.params["dev_dir"])
        except OSError:
            return []
        return sorted(int(match.group(1)) for match in (re.match(r"^davinci(\d+)$", name) for name in names) if match)

    def _add_phy_ids(self, npu_smi, chips):
        """Physical ids the documented way: phyid-remap -p N for each /dev/davinciN."""
        if all(chip["phy_id"] is not None for chip in chips):
            return chips
        nodes = self._davinci_nodes()
        remaps = []
        for node in nodes:
            remap, problem = npu_smi.try_run(["info", "-t", "phyid-remap", "-p", str(node)], parse_phyid_remap)
            if remap is None:
                self.module.warn("cannot derive physical ids, device paths stay null: %s" % problem)
                return chips
            remaps.append(remap)
        try:
            chips = apply_phyid_remap(chips, remaps)
        except NpuSmiMismatchError as error:
            raise NpuFactsError("`%s info -t phyid-remap` contradicts npu-smi info: %s" % (npu_smi.path, error)) from None
        unknown = ["NPU %s chip %s" % (c["npu_id"], c["chip_id"]) for c in chips if c["phy_id"] is None]
        if unknown:
            self.module.warn("no %s/davinci<N> node maps to %s; their device paths stay null"
                             % (self.params["dev_dir"].rstrip("/"), ", ".join(unknown)))
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
            self.module.warn("could not read %s: %s" % (path, error))
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
                versioned.append((_sort_key(name[len("cann-"):]), os.path.join(root, name)))
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
        paths = [os.path.join(root, "driver", "lib64"), os.path.join(root, "driver", "version.info"),
                 INSTALL_INFO, DCMI_DIR, npu_smi_path, fwkacllib]
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
            self.module.warn("could not read %s: %s" % (path, error))
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


_CHIP_KEYS = ("npu_id", "chip_id", "logic_id", "phy_id", "phy_id_source", "device", "name", "health", "power_w", "temp_c",
              "aicore_pct", "bus_id", "memory_total_mb", "memory_used_mb", "memory_kind", "hugepages_total",
              "hugepages_used", "processes")


def _public_chip(chip):
    return {key: chip.get(key) for key in _CHIP_KEYS}


def main():
    module = AnsibleModule(
        argument_spec={
            "npu_smi_path": {"type": "path"},
            "ascend_root": {"type": "path", "default": "/usr/local/Ascend"},
            "docker_daemon_config": {"type": "path", "default": "/etc/docker/daemon.json"},
            "dev_dir": {"type": "path", "default": "/dev"},
            "npu_smi_info_file": {"type": "path"},
        },
        supports_check_mode=True,
    )
    collector = NpuFacts(module)
    try:
        facts = collector.from_file() if module.params["npu_smi_info_file"] else collector.from_host()
    except NpuFactsError as error:
        module.fail_json(msg=str(error), **error.details)
    module.exit_json(changed=False, ansible_facts={"npu": facts})


if __name__ == "__main__":
    main()
