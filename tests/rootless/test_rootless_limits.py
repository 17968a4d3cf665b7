"""Resource limits of rootless containers: applied where the user's cgroup v2 controllers are delegated,
else discarded with Docker's warnings while the container still runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rootlesshelpers import User, busybox_rootfs

from strata.rootless import cgroups

MEMORY = "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded."
PIDS = "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded."


def _spec() -> dict[str, Any]:
    return {"linux": {"resources": {"devices": [], "memory": {"limit": 1 << 26, "swap": 1 << 27},
                                    "cpu": {"shares": 512, "cpus": "0"}, "pids": {"limit": 10}}}}  # fmt: skip


def test_only_undelegated_limits_are_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    hc = {"Memory": 1 << 26, "CpuShares": 512, "CpusetCpus": "0", "PidsLimit": 10}
    monkeypatch.setattr(cgroups, "delegated_controllers", lambda uid=None: {"cpu", "pids"})
    spec = _spec()
    cgroups.strip_limits(spec, hc)
    assert spec["linux"]["resources"] == {"devices": [], "cpu": {"shares": 512}, "pids": {"limit": 10}}
    assert cgroups.discarded_limits(hc) == [
        MEMORY, "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."
    ]
    monkeypatch.setattr(cgroups, "delegated_controllers", lambda uid=None: set())
    spec = _spec()
    cgroups.strip_limits(spec, hc)
    assert spec["linux"]["resources"] == {"devices": []}
    assert cgroups.discarded_limits({"Memory": 0}) == []


@pytest.mark.timeout(300)
@pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static")
def test_a_run_with_limits_warns_and_proceeds_without_delegation(user: User) -> None:
    if Path("/sys/fs/cgroup/cgroup.controllers").is_file():
        pytest.skip("a cgroup v2 host: whether limits are delegated depends on systemd")
    busybox_rootfs(user.home / "bb.tar")
    user.strata("import", "bb.tar", "lim:1")
    done = user.strata("run", "--rm", "--network", "none", "-m", "64m", "--pids-limit", "10", "lim:1",
                       "echo", "ran")  # fmt: skip
    assert done.stdout == "ran\n"
    assert done.stderr == f"WARNING: {MEMORY}\nWARNING: {PIDS}\n"
    assert user.strata("run", "--rm", "--network", "none", "lim:1", "true").stderr == ""


def test_delegated_limits_go_to_a_cgroup_below_the_delegation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd's layout: user@UID.service (and below) belongs to the user and lists the delegated
    controllers; the container's cgroup is made below it, limits of other controllers are dropped."""
    import os

    root = tmp_path / "cgroup"
    service = root / "user.slice" / "user-1000.slice" / "user@1000.service"
    scope = service / "app.slice" / "term.scope"
    scope.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    for d in (root / "user.slice", root / "user.slice" / "user-1000.slice", service, service / "app.slice", scope):
        (d / "cgroup.procs").touch()
    for d in (root / "user.slice", root / "user.slice" / "user-1000.slice"):
        os.chown(d / "cgroup.procs", 65534, 65534)  # systemd's, not the user's
    (service / "cgroup.controllers").write_text("memory pids\n")
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", root)
    monkeypatch.setattr(cgroups, "_own_cgroup", lambda: scope)
    monkeypatch.setattr(cgroups, "_host_uid", lambda: os.getuid())
    assert cgroups.delegated_controllers() == {"memory", "pids"}
    spec = _spec()
    hc = {"Memory": 1 << 26, "CpuShares": 512, "PidsLimit": 10}
    cgroups.strip_limits(spec, hc, "abc")
    assert spec["linux"]["cgroupsPath"] == "/user.slice/user-1000.slice/user@1000.service/strata-abc"
    assert spec["linux"]["resources"] == {"devices": [], "memory": {"limit": 1 << 26, "swap": 1 << 27},
                                          "cpu": {"cpus": "0"}, "pids": {"limit": 10}}  # fmt: skip
    assert cgroups.discarded_limits(hc) == [
        "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."
    ]


def test_cfs_reservation_and_throttle_limits_are_stripped_undelegated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limits of --cpu-period/--cpu-quota/--cpuset-mems/--memory-reservation/--kernel-memory/
    --memory-swappiness and the block I/O device throttles: dropped with the daemon's warnings where their
    controller is not delegated (runc would refuse them), kept where it is; cpuset warned once for both."""
    hc = {"CpuPeriod": 50000, "CpuQuota": 25000, "CpusetCpus": "0", "CpusetMems": "0", "MemoryReservation": 1 << 25,
          "KernelMemory": 1 << 25, "MemorySwappiness": 0, "BlkioDeviceReadBps": [{"Path": "/dev/loop0", "Rate": 1}]}
    spec = {"linux": {"resources": {
        "memory": {"reservation": 1 << 25, "kernel": 1 << 25, "swappiness": 0},
        "cpu": {"period": 50000, "quota": 25000, "cpus": "0", "mems": "0"},
        "blockIO": {"throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 1}]}}}}
    monkeypatch.setattr(cgroups, "delegated_controllers", lambda uid=None: {"cpu"})
    cgroups.strip_limits(spec, hc)
    assert spec["linux"]["resources"] == {"cpu": {"period": 50000, "quota": 25000}}
    assert cgroups.discarded_limits(hc) == [
        "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.",
        "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. "
        "Limitation discarded.",
        "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
        "Memory swappiness discarded.",
        "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
        "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. "
        "Block I/O BPS read limit discarded.",
    ]
    assert cgroups.discarded_limits({"MemorySwappiness": None}) == []
    assert cgroups.discarded_limits({"MemorySwappiness": -1}) == []


@pytest.mark.timeout(300)
@pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static")
def test_a_run_with_cfs_limits_warns_and_proceeds_without_delegation(user: User) -> None:
    if Path("/sys/fs/cgroup/cgroup.controllers").is_file():
        pytest.skip("a cgroup v2 host: whether limits are delegated depends on systemd")
    busybox_rootfs(user.home / "bb.tar")
    user.strata("import", "bb.tar", "lim:2")
    done = user.strata("run", "--rm", "--network", "none", "--cpu-period", "50000", "--cpu-quota", "25000",
                       "--memory-reservation", "32m", "lim:2", "echo", "ran")  # fmt: skip
    assert done.stdout == "ran\n"
    assert done.stderr == (
        "WARNING: Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. "
        "Limitation discarded.\n"
        "WARNING: Your kernel does not support CPU cfs period or the cgroup is not mounted. Period discarded.\n"
        "WARNING: Your kernel does not support CPU cfs quota or the cgroup is not mounted. Quota discarded.\n"
    )
