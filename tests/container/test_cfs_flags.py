"""``--cpu-period``/``--cpu-quota``/``--cpuset-mems``/``--memory-reservation`` and the real-time and
kernel-memory flags of ``run``/``create``/``update`` (issue 15): the values in the container's cgroup files,
changed live by ``update``, ``inspect``'s HostConfig fields, and Docker 20.10's errors side by side."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime

_BLOCK_IO = ("BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
             "BlkioDeviceWriteIOps")
_FIELDS = ("CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetMems", "MemoryReservation",
           "KernelMemory")


def _cgroup(strata: Strata, name: str, v1: str, v2: str) -> str:
    return strata("exec", name, "sh", "-c", f"cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}").stdout


def _hc(strata: Strata, name: str) -> dict[str, object]:
    hc = json.loads(strata("inspect", "-f", "{{json .HostConfig}}", name).stdout)
    return {k: hc[k] for k in _FIELDS}


def test_cfs_limits_apply_and_update_live(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "cfs", "-m", "64m", "--cpu-period", "50000", "--cpu-quota", "25000",
           "--memory-reservation", "32m", "--cpuset-mems", "0", busybox_image, "sleep", "300")
    try:
        def seen() -> list[str]:
            return [_cgroup(strata, "cfs", "cpu/cpu.cfs_period_us", "cpu.max").strip(),
                    _cgroup(strata, "cfs", "cpu/cpu.cfs_quota_us", "cpu.max").strip(),
                    _cgroup(strata, "cfs", "memory/memory.soft_limit_in_bytes", "memory.low").strip(),
                    _cgroup(strata, "cfs", "cpuset/cpuset.mems", "cpuset.mems").strip()]

        v1 = "cfs_period_us" in strata("exec", "cfs", "ls", "/sys/fs/cgroup/cpu/").stdout
        assert seen() == (["50000", "25000", str(32 << 20), "0"] if v1 else
                          ["25000 50000", "25000 50000", str(32 << 20), "0"])
        assert _hc(strata, "cfs") == {"CpuPeriod": 50000, "CpuQuota": 25000, "CpuRealtimePeriod": 0,
                                      "CpuRealtimeRuntime": 0, "CpusetMems": "0", "MemoryReservation": 32 << 20,
                                      "KernelMemory": 0}
        assert strata("update", "--cpu-quota", "40000", "--memory-reservation", "48m", "cfs").stdout == "cfs\n"
        assert seen() == (["50000", "40000", str(48 << 20), "0"] if v1 else
                          ["40000 50000", "40000 50000", str(48 << 20), "0"])
        hc = _hc(strata, "cfs")
        assert (hc["CpuPeriod"], hc["CpuQuota"], hc["MemoryReservation"]) == (50000, 40000, 48 << 20)
        res = strata("update", "--cpus", "1", "cfs", check=False)
        assert (res.returncode, res.stderr) == (1, "Error: Cannot update container " + strata(
            "inspect", "-f", "{{.Id}}", "cfs").stdout.strip() + ": Conflicting options: CPU Period cannot be "
            "updated as NanoCPUs has already been set\n")
    finally:
        strata("rm", "-f", "cfs", check=False)


def test_kernel_memory_and_realtime_reach_the_runtime(strata: Strata, busybox_image: str) -> None:
    """``--kernel-memory`` (deprecated: Docker's warning, the container still runs) and a real-time period
    within the parent's (the runtime writes it: ``cpu.rt_period_us`` inside)."""
    res = strata("run", "--rm", "--kernel-memory", "8m", busybox_image, "echo", "ok")
    assert (res.stdout, res.stderr) == ("ok\n", "WARNING: Specifying a kernel memory limit is deprecated and will "
                                        "be removed in a future release.\n")
    out = strata("run", "--rm", "--cpu-rt-period", "500000", busybox_image, "sh", "-c",
                 "cat /sys/fs/cgroup/cpu/cpu.rt_period_us 2>/dev/null || echo v2").stdout.strip()
    assert out in ("500000", "v2")


def _error(res: subprocess.CompletedProcess[str]) -> str:
    text = re.sub(r"(?m)^(docker: )?(Error response from daemon: |Error: )?", "", res.stderr.strip())
    return re.sub(r"\b[0-9a-f]{64}\b", "<ID>", text)


_CREATE_CASES = [
    ["--cpu-period", "x"], ["--cpu-period", "500"], ["--cpu-period", "2000000"], ["--cpu-quota", "999"],
    ["--cpus", "1", "--cpu-period", "100000"], ["--cpus", "1", "--cpu-quota", "50000"],
    ["--memory-reservation", "1x"], ["--memory-reservation", "1m"], ["-m", "32m", "--memory-reservation", "64m"],
    ["--cpuset-mems", "7"], ["--cpuset-mems", "a"], ["--cpu-rt-period", "q"], ["--kernel-memory", "zz"],
    ["--kernel-memory", "2m"], ["--kernel-memory", "8m"], ["--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000"],
    ["--cpu-period", "-5"], ["--memory-reservation", "-1"], ["-m", "5m"], ["--cpu-quota", "-1"],
    ["--memory-swappiness", "101"], ["--memory-swappiness", "-2"], ["--memory-swappiness", "x"],
    ["--oom-score-adj", "1001"], ["--oom-score-adj", "x"],
    ["--device-read-bps", "x"], ["--device-read-bps", "vda:1m"], ["--device-read-bps", "/dev/vda:zz"],
    ["--device-write-iops", "/dev/vda:1k"], ["--device-read-iops", "x"], ["--blkio-weight-device", "/dev/vda:5"],
    ["--blkio-weight-device", "/dev/loop0:300"],
]


def test_create_errors_and_zero_values_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                                    docker_busybox: str) -> None:
    for args in _CREATE_CASES:
        ours = strata("create", *args, busybox_image, "true", check=False)
        theirs = dockerd.run("create", *args, docker_busybox, "true", check=False)
        if theirs.returncode == 0:
            dockerd.run("rm", "-f", theirs.stdout.strip(), check=False)
        assert (ours.returncode, _error(ours).replace("strata", "X")) == (
            theirs.returncode, _error(theirs).replace("docker", "X")), args
    name = "parity-cfs-zero"
    strata("create", "--name", name, busybox_image, "true")
    dockerd.run("create", "--name", name, docker_busybox, "true")
    try:
        fmt = " ".join(f"{{{{json .HostConfig.{k}}}}}" for k in (*_FIELDS, "MemorySwappiness", "OomScoreAdj",
                                                                   *_BLOCK_IO))
        assert strata("inspect", "-f", fmt, name).stdout == dockerd.run("inspect", "-f", fmt, name).stdout
    finally:
        strata("rm", "-f", name, check=False)
        dockerd.run("rm", "-f", name, check=False)
    name = "parity-cfs-tuned"
    flags = ["--memory-swappiness", "10", "--oom-score-adj", "500", "--memory-reservation", "16m",
             "--device-read-bps", "/dev/loop0:1mb", "--device-write-iops", "/dev/loop0:100"]
    strata("create", "--name", name, *flags, busybox_image, "true")
    dockerd.run("create", "--name", name, *flags, docker_busybox, "true")
    try:
        fmt = " ".join(f"{{{{json .HostConfig.{k}}}}}" for k in (*_FIELDS, "MemorySwappiness", "OomScoreAdj",
                                                                   *_BLOCK_IO))
        assert strata("inspect", "-f", fmt, name).stdout == dockerd.run("inspect", "-f", fmt, name).stdout
    finally:
        strata("rm", "-f", name, check=False)
        dockerd.run("rm", "-f", name, check=False)


def test_device_throttles_reach_the_cgroup(strata: Strata, busybox_image: str) -> None:
    """``--device-read-bps``/``--device-write-iops`` as the daemon turns them into major:minor rules."""
    rdev = Path("/dev/loop0").stat().st_rdev
    out = strata("run", "--rm", "--device-read-bps", "/dev/loop0:1mb", "--device-write-iops", "/dev/loop0:100",
                 busybox_image, "sh", "-c", "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device "
                 "/sys/fs/cgroup/blkio/blkio.throttle.write_iops_device 2>/dev/null || echo v2").stdout
    dev = f"{os.major(rdev)}:{os.minor(rdev)}"
    assert out.split("\n")[:2] == [f"{dev} 1048576", f"{dev} 100"] or out.strip() == "v2", out
    res = strata("run", "--rm", "--device-read-bps", "/dev/nosuch:1m", busybox_image, "true", check=False)
    assert res.returncode != 0 and "stat /dev/nosuch: no such file or directory" in res.stderr


def test_swappiness_and_oom_score_reach_the_container(strata: Strata, busybox_image: str) -> None:
    out = strata("run", "--rm", "--memory-swappiness", "10", "--oom-score-adj", "500", busybox_image, "sh", "-c",
                 "cat /proc/self/oom_score_adj; cat /sys/fs/cgroup/memory/memory.swappiness 2>/dev/null || echo v2")
    assert out.stdout.split() in (["500", "10"], ["500", "v2"])


def test_update_errors_and_fields_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                               docker_busybox: str) -> None:
    name = "parity-cfs-update"
    strata("run", "-d", "--name", name, "--network", "none", "--cpus", "0.5", busybox_image, "sleep", "300")
    dockerd.run("run", "-d", "--name", name, "--network", "none", "--cpus", "0.5", docker_busybox, "sleep", "300")
    try:
        for args in (["--cpu-period", "x"], ["--cpu-period", "100000"], ["--cpu-quota", "999"],
                     ["--memory-reservation", "1m"], ["--cpuset-mems", "9"], ["--memory-reservation", "16m"],
                     ["--cpuset-mems", "0"], ["--kernel-memory", "8m"], ["--cpu-quota", "-1"]):
            ours = strata("update", *args, name, check=False)
            theirs = dockerd.run("update", *args, name, check=False)
            assert (ours.returncode, ours.stdout, _error(ours).replace("strata", "X")) == (
                theirs.returncode, theirs.stdout, _error(theirs).replace("docker", "X")), args
        fmt = " ".join(f"{{{{json .HostConfig.{k}}}}}" for k in _FIELDS)
        assert strata("inspect", "-f", fmt, name).stdout == dockerd.run("inspect", "-f", fmt, name).stdout
    finally:
        strata("rm", "-f", name, check=False)
        dockerd.run("rm", "-f", name, check=False)
