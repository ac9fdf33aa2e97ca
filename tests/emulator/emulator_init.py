#!/usr/bin/env python
"""Turn a plain container into an emulated Ascend NPU server, then run dockerd.

TEST EQUIPMENT ONLY (PID 1 of the emulated host image). From the host profile
named by $NPU_EMULATOR_PROFILE it creates what a real Atlas server has and
our roles read or mount: /dev/davinci<N> character nodes plus the manager
nodes (owned by the driver's running user and group HwHiAiUser, uid and gid
1000, mode 0660, as the driver makes them), the driver / firmware / CANN / NNAL version files, driver lib64,
dcmi, /etc/ascend_install.info, optionally fwkacllib and the Ascend Docker
Runtime registered in /etc/docker/daemon.json. Then it execs dockerd so the
host can run containers of its own (Docker-in-Docker).
"""

import json
import os
import shutil
import stat
import sys

import yaml

PROFILE_DIR = "/etc/npu-emulator/profiles"
ACTIVE_PROFILE = "/etc/npu-emulator/profile.yml"
ASCEND = "/usr/local/Ascend"
DAVINCI_MAJOR = 236
RUNTIME_DIR = ASCEND + "/Ascend-Docker-Runtime"
# The driver's running user and group (CANN install guide: "the running user and user group are HwHiAiUser by
# default"; MindCluster: its UID and GID are 1000 on every host and in containers).
DRIVER_USER = "HwHiAiUser"
DRIVER_ID = 1000
DEVICE_MODE = 0o660


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def mknod(path, minor):
    """A character node like the driver's: HwHiAiUser:HwHiAiUser, mode 0660 (set after mknod, which the umask trims)."""
    if os.path.exists(path):
        os.unlink(path)
    os.mknod(path, DEVICE_MODE | stat.S_IFCHR, os.makedev(DAVINCI_MAJOR, minor))
    os.chown(path, DRIVER_ID, DRIVER_ID)
    os.chmod(path, DEVICE_MODE)


def _has_entry(path, name):
    try:
        with open(path, encoding="utf-8") as handle:
            return any(line.split(":", 1)[0] == name for line in handle)
    except FileNotFoundError:
        return False


def create_driver_user():
    """The HwHiAiUser user and group a driver install needs first (CANN install guide: groupadd / useradd)."""
    if not _has_entry("/etc/group", DRIVER_USER):
        with open("/etc/group", "a", encoding="utf-8") as handle:
            handle.write("%s:x:%d:\n" % (DRIVER_USER, DRIVER_ID))
    if not _has_entry("/etc/passwd", DRIVER_USER):
        with open("/etc/passwd", "a", encoding="utf-8") as handle:
            handle.write("%s:x:%d:%d::/home/%s:/usr/sbin/nologin\n" % (DRIVER_USER, DRIVER_ID, DRIVER_ID, DRIVER_USER))


def chip_count(profile):
    npus = len(profile.get("npu_ids") or range(int(profile.get("npu_count", 0))))
    return npus * int(profile.get("chips_per_npu", 1))


def create_devices(profile):
    for index in range(chip_count(profile)):
        mknod("/dev/davinci%d" % index, index)
    for offset, name in enumerate(("davinci_manager", "devmm_svm", "hisi_hdc")):
        mknod("/dev/" + name, 200 + offset)


def create_driver(profile):
    drv = str(profile["driver_version"])
    write(
        ASCEND + "/driver/version.info",
        "\n".join(
            [
                "Version=" + drv,
                "ascendhal_version=7.35.23",
                "aicpu_version=1.0",
                "tdt_version=1.0",
                "log_version=1.0",
                "prof_version=2.0",
                "dvppkernels_version=1.1",
                "tsfw_version=1.0",
                "Innerversion=V100R001C21SPC002B220",
                "compatible_version=[V100R001C17],[V100R001C18],[V100R001C19],[V100R001C20],[V100R001C21]",
                "compatible_version_fw=[7.0.0,7.7.99]",
                "package_version=" + drv,
                "",
            ]
        ),
    )
    for lib in ("libascend_hal.so", "libdrvdsmi_host.so", "libdcmi.so"):
        write(ASCEND + "/driver/lib64/driver/" + lib, "emulated\n")
    write(
        ASCEND + "/firmware/version.info",
        "\n".join(
            [
                "Version=" + str(profile["firmware_version"]),
                "firmware_version=1.0",
                "package_version=" + drv,
                "compatible_version_drv=[23.0.0,23.0.0.],[24.0,24.0.],[24.1,24.1.],[25.0,25.0.]",
                "",
            ]
        ),
    )
    write(
        "/etc/ascend_install.info",
        "\n".join(
            [
                "UserName=HwHiAiUser",
                "UserGroup=HwHiAiUser",
                "Firmware_Install_Type=full",
                "Firmware_Install_Path_Param=" + ASCEND,
                "Driver_Install_Type=full",
                "Driver_Install_Path_Param=" + ASCEND,
                "Driver_Install_For_All=yes",
                "",
            ]
        ),
    )
    if profile.get("dcmi", True):
        write("/usr/local/dcmi/dcmi_interface_api.h", "/* emulated */\n")
        write("/usr/local/dcmi/libdcmi.so", "emulated\n")


def create_cann(profile):
    cann = str(profile["cann_version"])
    arch = profile.get("arch", "aarch64")
    home = "%s/ascend-toolkit/%s" % (ASCEND, cann)
    write(
        "%s/%s-linux/ascend_toolkit_install.info" % (home, arch),
        "\n".join(
            [
                "package_name=Ascend-cann-toolkit",
                "version=" + cann,
                "innerversion=V100R001C21SPC001B238",
                "compatible_version=[V100R001C15],[V100R001C18],[V100R001C19],[V100R001C20],[V100R001C21]",
                "arch=" + arch,
                "os=linux",
                "path=%s/%s-linux" % (home, arch),
                "",
            ]
        ),
    )
    write(home + "/runtime/lib64/libruntime.so", "emulated\n")
    latest = ASCEND + "/ascend-toolkit/latest"
    if os.path.lexists(latest):
        os.unlink(latest)
    os.symlink(cann, latest)
    if profile.get("fwkacllib", True):
        write(home + "/fwkacllib/lib64/libge_runner.so", "emulated\n")
    nnal = profile.get("nnal_version")
    if nnal:
        write(ASCEND + "/nnal/atb/%s/atb/cxx_abi_1/lib/libatb.so" % nnal, "emulated\n")
        write(
            ASCEND + "/nnal/atb/%s/version.info" % nnal,
            "\n".join(
                [
                    "    Ascend-cann-atb : " + str(nnal),
                    "    Ascend-cann-atb Version : %s.B110" % nnal,
                    "    Platform : " + arch,
                    "    branch : br_release_cann_%s" % nnal,
                    "    commit id : 429f2ba259d45cb8fd0e23e218f4685bed3855d7",
                    "",
                ]
            ),
        )
        if os.path.lexists(ASCEND + "/nnal/atb/latest"):
            os.unlink(ASCEND + "/nnal/atb/latest")
        os.symlink(str(nnal), ASCEND + "/nnal/atb/latest")


def create_docker_runtime(profile):
    """A pass-through 'ascend' runtime (execs runc) plus its install.info."""
    runtime = profile.get("ascend_docker_runtime") or {}
    daemon = {"storage-driver": "overlay2"}
    if runtime.get("installed"):
        write(RUNTIME_DIR + "/ascend-docker-runtime", '#!/bin/sh\nexec runc "$@"\n', 0o755)
        write(
            RUNTIME_DIR + "/ascend_docker_runtime_install.info",
            "\n".join(
                [
                    "version=" + str(runtime.get("version", "v5.0.RC3")),
                    "arch=" + profile.get("arch", "aarch64"),
                    "os=linux",
                    "path=" + RUNTIME_DIR,
                    "build=Ascend-docker-runtime_" + str(runtime.get("version", "")),
                    "",
                ]
            ),
        )
        if runtime.get("registered"):
            daemon["runtimes"] = {"ascend": {"path": RUNTIME_DIR + "/ascend-docker-runtime", "runtimeArgs": []}}
    write("/etc/docker/daemon.json", json.dumps(daemon, indent=2) + "\n")


def main():
    name = os.environ.get("NPU_EMULATOR_PROFILE", "a2-910b4-8x32g")
    source = os.path.join(PROFILE_DIR, name + ".yml")
    if not os.path.exists(source):
        sys.stderr.write("npu-emulator: no host profile %s (have: %s)\n" % (source, ", ".join(sorted(os.listdir(PROFILE_DIR)))))
        return 2
    shutil.copyfile(source, ACTIVE_PROFILE)
    with open(ACTIVE_PROFILE, encoding="utf-8") as handle:
        profile = yaml.safe_load(handle)
    create_driver_user()
    create_devices(profile)
    create_driver(profile)
    create_cann(profile)
    create_docker_runtime(profile)
    # A restarted emulated host (its container stopped without a clean dockerd exit, or the machine rebooted)
    # still has the engine's pid files; this process is PID 1, so no engine of this container is running.
    for stale in ("/var/run/docker.pid", "/var/run/docker/containerd/containerd.pid"):
        if os.path.exists(stale):
            os.unlink(stale)
    os.execvp("dockerd", ["dockerd", "--host", "unix:///var/run/docker.sock"] + sys.argv[1:])
    return 1


if __name__ == "__main__":
    sys.exit(main())
