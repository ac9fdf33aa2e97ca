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
    which host paths a container needs bind-mounted, who owns the device nodes (owner, group, mode), and
    whether the Ascend Docker Runtime is installed and registered in the Docker daemon configuration.
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
      - Directory holding the C(davinci<N>) device nodes, listed to derive physical ids with C(npu-smi info -t phyid-remap)
        and read for RV(ansible_facts.npu.device_access).
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
        device_access:
          description:
            - Who may open the NPU device nodes - every C(davinci<N>) under O(dev_dir) and the manager nodes
              C(davinci_manager), C(devmm_svm), C(hisi_hdc) - as their owner, group and mode on the host; a container
              gets each node with the same owner, group and mode. The serve role decides from it which user a replica
              runs as and which group it is given (on a real host the driver's running group, C(HwHiAiUser), mode
              C(0660)).
            - V(null) with O(npu_smi_info_file).
          returned: always
          type: dict
          contains:
            nodes:
              description: Per node path (named C(/dev/<name>)), its C(uid), C(gid) and C(mode) (four octal digits).
              type: dict
              sample:
                /dev/davinci0: {uid: 1000, gid: 1000, mode: "0660"}
                /dev/davinci_manager: {uid: 1000, gid: 1000, mode: "0660"}
            gid:
              description: The group all nodes share; V(null) when they differ or no node exists.
              type: int
              sample: 1000
            group:
              description: Name of RV(ansible_facts.npu.device_access.gid) on the host; V(null) when it has none.
              type: str
              sample: HwHiAiUser
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
        listening_ports:
          description:
            - TCP ports something on the host listens on (C(ss -Hltn), any address), which the planner keeps out of the plan.
            - V(null) when C(ss) (iproute2) is missing (with a warning) or with O(npu_smi_info_file).
          returned: always
          type: list
          elements: int
          sample: [22, 18100]
        host_tools:
          description:
            - Paths of the commands npu.fleet runs on the host besides C(npu-smi) - C(docker) (the Docker CLI; a rollback
              renames with it, the probe reads failed containers with it) and C(ss) - each V(null) when missing; the
              preflight role turns a missing one into a problem.
            - Not returned with O(npu_smi_info_file).
          returned: when the host itself was read
          type: dict
          sample: {docker: /usr/bin/docker, ss: /usr/bin/ss}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.npu.fleet.plugins.module_utils._npu_discovery import NpuFactsError, discover


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
    try:
        # run(argv) -> (rc, stdout, stderr), which(name) -> path or None, warn(message)
        facts = discover(module.params, run=module.run_command, which=module.get_bin_path, warn=module.warn)
    except NpuFactsError as error:
        module.fail_json(msg=str(error), **error.details)
    module.exit_json(changed=False, ansible_facts={"npu": facts})


if __name__ == "__main__":
    main()
