"""Resource limits of a rootless container: the runtime can only apply those whose cgroup v2
controllers systemd delegates to the user (``/sys/fs/cgroup/user.slice/user-UID.slice/user@UID.service``
holds ``cgroup.controllers`` and is the user's). On a cgroup v1 host, or without delegation, the limits
are discarded with Docker's warnings and the container runs without them, as Docker's and Podman's
rootless modes do."""

from __future__ import annotations

import os
from pathlib import Path

TYPE_CHECKING = False  # not typing's: a build step's container loads no typing
if TYPE_CHECKING:
    from typing import Any

__all__ = ["cgroup_driver", "delegated_controllers", "discarded_limits", "strip_limits", "undelegated"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
# HostConfig key -> (the controller it needs, where it is in the OCI resources, Docker's warning), in the
# order of the daemon's checks (verifyPlatformContainerResources)
_LIMITS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "Memory": ("memory", ("memory",),
               "Your kernel does not support memory limit capabilities or the cgroup is not mounted. "
               "Limitation discarded."),
    "MemoryReservation": ("memory", ("memory", "reservation"),
                          "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. "
                          "Limitation discarded."),
    "KernelMemory": ("memory", ("memory", "kernel"),
                     "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. "
                     "Limitation discarded."),
    "MemorySwappiness": ("memory", ("memory", "swappiness"),
                         "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
                         "Memory swappiness discarded."),
    "PidsLimit": ("pids", ("pids",),
                  "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. "
                  "PIDs limit discarded."),
    "NanoCpus": ("cpu", ("cpu", "quota", "period"),
                 "Your kernel does not support CPU CFS scheduler or the cgroup is not mounted. "
                 "CPU quota discarded."),
    "CpuShares": ("cpu", ("cpu", "shares"),
                  "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."),
    "CpuPeriod": ("cpu", ("cpu", "period"),
                  "Your kernel does not support CPU cfs period or the cgroup is not mounted. Period discarded."),
    "CpuQuota": ("cpu", ("cpu", "quota"),
                 "Your kernel does not support CPU cfs quota or the cgroup is not mounted. Quota discarded."),
    "CpusetCpus": ("cpuset", ("cpu", "cpus"),
                   "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."),
    "CpusetMems": ("cpuset", ("cpu", "mems"),
                   "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."),
    "BlkioWeightDevice": ("io", ("blockIO", "weightDevice"),
                          "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. "
                          "Weight-device discarded."),
    "BlkioDeviceReadBps": ("io", ("blockIO", "throttleReadBpsDevice"),
                           "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. "
                           "Block I/O BPS read limit discarded."),
    "BlkioDeviceWriteBps": ("io", ("blockIO", "throttleWriteBpsDevice"),
                            "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. "
                            "Block I/O BPS write limit discarded."),
    "BlkioDeviceReadIOps": ("io", ("blockIO", "throttleReadIOPSDevice"),
                            "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. "
                            "Block I/O IOPS read limit discarded."),
    "BlkioDeviceWriteIOps": ("io", ("blockIO", "throttleWriteIOPSDevice"),
                             "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. "
                             "Block I/O IOPS write limit discarded."),
}  # fmt: skip


def _own_cgroup() -> Path | None:
    """This process's cgroup v2 directory when the host runs the unified hierarchy only."""
    if not (CGROUP_ROOT / "cgroup.controllers").is_file():
        return None  # cgroup v1 (or hybrid): no rootless delegation
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return CGROUP_ROOT / line[3:].lstrip("/")
    return None


def _delegation_root(uid: int | None = None) -> Path | None:
    """The topmost ancestor of this process's cgroup that belongs to ``uid`` (default: the host user
    behind this namespace): systemd's ``user@UID.service`` where it delegates."""
    here = _own_cgroup()
    if here is None:
        return None
    owner = _host_uid() if uid is None else uid
    found = None
    for path in (here, *here.parents):
        if path == CGROUP_ROOT or not str(path).startswith(str(CGROUP_ROOT)):
            break
        try:
            if os.stat(path / "cgroup.procs").st_uid != owner:
                break
        except OSError:
            break
        found = path
    return found


def delegated_controllers(uid: int | None = None) -> set[str]:
    """The controllers the user may use (those of its delegated cgroup; none on cgroup v1)."""
    root = _delegation_root(uid)
    if root is None:
        return set()
    try:
        return set((root / "cgroup.controllers").read_text().split())
    except OSError:
        return set()


def _host_uid() -> int:
    """The host uid this process runs as (container root of a rootless namespace is the user)."""
    try:
        for line in Path("/proc/self/uid_map").read_text().splitlines():
            inside, outside, _ = (int(x) for x in line.split())
            if inside == 0:
                return outside
    except (OSError, ValueError):
        pass
    return os.getuid()


def discarded_limits(host_config: dict[str, Any]) -> list[str]:
    """Docker's warnings for the limits a rootless container cannot have here (none when delegated)."""
    asked = [key for key in _LIMITS if _asked(host_config, key)]
    if not asked:
        return []
    have = delegated_controllers()
    return list(dict.fromkeys(_LIMITS[key][2] for key in asked if _LIMITS[key][0] not in have))  # cpuset once


def undelegated(changes: dict[str, Any]) -> list[str]:
    """The HostConfig keys of ``changes`` (``update``'s) whose controller the user's cgroup does not have,
    ``MemorySwap`` with ``Memory``'s: dropped with :func:`discarded_limits`' warnings, as a run drops them."""
    have = delegated_controllers()
    keys = [key for key, (controller, _, _) in _LIMITS.items() if _asked(changes, key) and controller not in have]
    return keys + (["MemorySwap"] if changes.get("MemorySwap") and "memory" not in have else [])


def _asked(host_config: dict[str, Any], key: str) -> bool:
    """A limit the user set (a swappiness of 0 is one; unset is null)."""
    value = host_config.get(key)
    return value is not None and value != -1 if key == "MemorySwappiness" else bool(value)


def strip_limits(spec: dict[str, Any], host_config: dict[str, Any], cid: str = "") -> None:
    """Drop from the OCI spec the limits the user's cgroup cannot take (runc would refuse to start); the
    ones it can go to a cgroup of the container's below the user's delegated one."""
    resources = spec.get("linux", {}).get("resources")
    if not isinstance(resources, dict):
        return
    have = delegated_controllers()
    root = _delegation_root() if have and cid else None
    if root is not None and any(_asked(host_config, k) and c in have for k, (c, _, _) in _LIMITS.items()):
        spec["linux"]["cgroupsPath"] = "/" + str(root.relative_to(CGROUP_ROOT) / f"strata-{cid}")
    for key, (controller, (oci_key, *fields), _) in _LIMITS.items():
        if not _asked(host_config, key) or controller in have:
            continue
        part = resources.get(oci_key)
        if fields and isinstance(part, dict):
            for name in fields:
                part.pop(name, None)
        if not fields or not part:
            resources.pop(oci_key, None)


def cgroup_driver(version: str) -> tuple[str, list[str]]:
    """``info``'s cgroup driver of a rootless store and the daemon's warnings: ``none`` without delegated
    controllers (Docker's rootless mode on cgroup v1, or v2 without systemd's delegation), else cgroupfs
    (a cgroup of the container's below the delegated one)."""
    if delegated_controllers():
        return "cgroupfs", []
    fix = ("Systemd is required to enable cgroups in rootless-mode." if version == "2" else
           "To enable cgroups in rootless-mode, you need to boot the system in cgroup v2 mode.")
    return "none", [f"WARNING: Running in rootless-mode without cgroups. {fix}"]
