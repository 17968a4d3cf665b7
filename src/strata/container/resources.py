"""Resource limits and privileges as Docker's ``run`` flags set them: ``-m``/``--memory-swap``,
``--cpus``/``--cpu-shares``/``--cpuset-cpus``, ``--pids-limit``, ``--blkio-weight``, ``--oom-kill-disable``,
``--ulimit``, ``--init`` (tini, as Docker's docker-init), ``--cap-add``/``--cap-drop``, ``--privileged``.
Parsed into HostConfig fields with Docker's errors and warnings, applied to the OCI spec (the runtime
writes the cgroups, v1 or v2) and, for ``update``, to a running container's cgroups (``runc update``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from strata.errors import StrataError

TYPE_CHECKING = False  # not typing's: a build step's container loads no typing
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "INIT_BINARY",
    "INIT_PATH",
    "all_capabilities",
    "apply_resources",
    "blkio_weight_supported",
    "capabilities",
    "check_cpuset",
    "check_cpuset_mems",
    "merge_update",
    "oom_kill_disable_supported",
    "parse_cpus",
    "parse_int64",
    "parse_ram",
    "parse_throttle_device",
    "parse_uint16",
    "parse_ulimit",
    "parse_weight_device",
    "resource_host_config",
    "resource_warnings",
    "runc_update_args",
]

INIT_BINARY = "/usr/bin/tini-static"  # Debian's tini, static: it runs in any image
INIT_PATH = "/sbin/docker-init"
_MIN_MEMORY = 6 * 1024 * 1024
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_ULIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
            "rtprio", "rttime", "sigpending", "stack", "as"}


def parse_ram(text: str) -> int:
    """go-units ``RAMInBytes``: ``6m``, ``1g``, ``512kb``, ``100`` (bytes); binary multiples."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtpb]?)(?:i?b)?", text.strip().lower())
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def parse_cpus(text: str) -> int:
    """``--cpus`` as NanoCPUs (a rational number, as Docker's CLI parses it)."""
    from fractions import Fraction  # with decimal: only a --cpus loads them (not a build's step)

    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"failed to parse {text} as a rational number") from None
    nano = value * 1_000_000_000
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


def parse_int64(text: str) -> int:
    """Go's ``strconv.ParseInt(text, 0, 64)`` (``--pids-limit``, ``--cpu-shares``) with its errors."""
    try:
        value = int(text, 0) if text.strip() == text and "_" not in text else int("!")
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
    if not -(1 << 63) <= value < 1 << 63:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def parse_uint16(text: str) -> int:
    """Go's ``strconv.ParseUint(text, 10, 16)`` (``--blkio-weight``) with its errors."""
    if not text.isdigit():
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    if int(text) > 0xFFFF:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return int(text)


def parse_throttle_device(text: str, iops: bool = False) -> dict[str, Any]:
    """``--device-read-bps PATH:RATE`` (``iops``: a plain count) as a Docker ThrottleDevice, the CLI's
    errors in the ValueError."""
    path, colon, rate_text = text.partition(":")
    if not colon:
        raise ValueError(f"bad format: {text}")
    if not path.startswith("/dev/"):
        raise ValueError(f"bad format for device path: {text}")
    why = (f"invalid rate for device: {text}. The correct format is <device-path>:<number>. Number must be a "
           "positive integer" if iops else f"invalid rate for device: {text}. The correct format is "
           "<device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, "
           "or gb")
    if iops and not rate_text.isdigit():
        raise ValueError(why)
    try:
        rate = int(rate_text) if iops else parse_ram(rate_text)
    except ValueError:
        raise ValueError(why) from None
    return {"Path": path, "Rate": rate}


def parse_weight_device(text: str) -> dict[str, Any]:
    """``--blkio-weight-device PATH:WEIGHT`` as a Docker WeightDevice (10-1000, or 0), the CLI's errors."""
    path, colon, weight_text = text.partition(":")
    if not colon:
        raise ValueError(f"bad format: {text}")
    if not path.startswith("/dev/"):
        raise ValueError(f"bad format for device path: {text}")
    if not weight_text.isdigit() or int(weight_text) > 0xFFFF or (int(weight_text) != 0
                                                                 and not 10 <= int(weight_text) <= 1000):
        raise ValueError(f"invalid weight for device: {text}")
    return {"Path": path, "Weight": int(weight_text)}


def _parse_decimal_int64(text: str) -> int:
    """Go's ``strconv.ParseInt(text, 10, 64)`` (base 10: ``parse_int64`` is base 0), its error text in
    the ValueError."""
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not all("0" <= ch <= "9" for ch in digits):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    if not -(2**63) <= int(text) < 2**63:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return int(text)


def parse_ulimit(text: str) -> dict[str, Any]:
    """``NAME=SOFT[:HARD]`` as a Docker ``Ulimit`` (go-units' ParseUlimit, its errors)."""
    name, eq, values = text.partition("=")
    if not eq:
        raise ValueError(f"invalid ulimit argument: {text}")
    if name not in _ULIMITS:
        raise ValueError(f"invalid ulimit type: {name}")
    limits = values.split(":")
    if len(limits) > 2:
        raise ValueError(f"too many limit value arguments - {values}, can only have up to two, `soft[:hard]`")
    hard = _parse_decimal_int64(limits[1]) if len(limits) == 2 else None  # Go parses the hard limit first
    soft = _parse_decimal_int64(limits[0])
    hard = soft if hard is None else hard
    if hard != -1 and soft > hard:
        raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


_CAP_NAMES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
              "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
              "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
              "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
              "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
              "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]


def all_capabilities() -> list[str]:
    """Every capability strata can give (``--privileged``, ``--cap-add ALL``)."""
    try:  # the ones strata itself may hand on: its bounding set (a container host may hold back some)
        with open("/proc/self/status") as f:
            bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, ValueError, StopIteration):
        bounding = (1 << 41) - 1
    return ["CAP_" + n for i, n in enumerate(_CAP_NAMES) if bounding >> i & 1]


def _cap_name(raw: str) -> str:
    name = raw.upper()
    return name if name == "ALL" or name.startswith("CAP_") else "CAP_" + name


def capabilities(default: list[str], add: list[str], drop: list[str], privileged: bool) -> list[str]:
    """Docker's TweakCapabilities: drops, then adds (``ALL`` either way); unknown ones refused."""
    known = all_capabilities()
    if privileged:
        return known
    names = {"CAP_" + n for n in _CAP_NAMES}
    adds, drops = [_cap_name(c) for c in add], [_cap_name(c) for c in drop]
    for flag, caps in (("CapAdd", adds), ("CapDrop", drops)):
        for cap in caps:
            if cap != "ALL" and cap not in names:
                raise StrataError(f'invalid {flag}: unknown capability: "{cap}"', exit_code=125)
    caps = [] if "ALL" in drops else [c for c in default if c not in drops]
    if "ALL" in adds:
        return known
    return caps + [c for c in adds if c not in caps]


def blkio_weight_supported() -> bool:
    """Docker's sysinfo: a ``blkio.weight`` (v1) or an ``io`` controller's weight (v2) to write."""
    root = Path("/sys/fs/cgroup")
    if (root / "blkio").is_dir():
        return any((root / "blkio" / f).exists() for f in ("blkio.weight", "blkio.bfq.weight"))
    return any((root / f).exists() for f in ("io.weight", "io.bfq.weight"))


def _weight_device_supported() -> bool:
    """Docker's sysinfo ``BlkioWeightDevice``: v1's ``blkio.weight_device`` (or bfq's), v2's io weight."""
    root = Path("/sys/fs/cgroup")
    if (root / "blkio").is_dir():
        return any((root / "blkio" / f).exists() for f in ("blkio.weight_device", "blkio.bfq.weight_device"))
    return any((root / f).exists() for f in ("io.weight", "io.bfq.weight"))


def oom_kill_disable_supported() -> bool:
    """cgroup v1's ``memory.oom_control`` (v2 has no switch: Docker discards the flag there)."""
    return Path("/sys/fs/cgroup/memory/memory.oom_control").exists()


def _check_memory(mem: int, swap: int) -> None:
    if mem and mem < _MIN_MEMORY:
        raise StrataError("Minimum memory limit allowed is 6MB")
    if swap and not mem:
        raise StrataError("You should always set the Memory limit when using Memoryswap limit, see usage")
    if swap > 0 and swap < mem:
        raise StrataError("Minimum memoryswap limit should be larger than memory limit, see usage")


def _check_cpus(nano: int) -> None:
    ncpu = os.cpu_count() or 1
    if nano and not 10_000_000 <= nano <= ncpu * 1_000_000_000:
        raise StrataError(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")


def _blkio_weight(weight: int, warnings: list[str]) -> int:
    """The daemon's rule: discarded (a warning) where the kernel has no weight, else 10-1000."""
    if not weight:
        return 0
    if not blkio_weight_supported():
        warnings.append("Your kernel does not support Block I/O weight or the cgroup is not mounted. "
                        "Weight discarded.")
        return 0
    if not 10 <= weight <= 1000:
        raise StrataError("Range of blkio weight is from 10 to 1000")
    return weight


def _uint_list(text: str, maximum: int | None = None) -> set[int]:
    """Docker's ``parsers.ParseUintList``(``Maximum``): ``0-3,5`` as a set; ValueError with its words."""
    out: set[int] = set()
    if not text:
        return out
    for part in text.split(","):
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise ValueError(f"invalid format: {text}") from None
        if last < first or (low + high).strip() != low + high or "_" in part:
            raise ValueError(f"invalid format: {text}")
        if maximum is not None and last > maximum:
            raise ValueError(f"value of out range, maximum is {maximum}")
        out.update(range(first, last + 1))
    return out


def _check_cpuset_list(value: str, files: tuple[str, str], what: str, missing: str, exit_code: int) -> None:
    """The daemon's check of a cpuset list against what its cgroup has (cgroup v1's cpuset root or v2's
    effective set); nothing to check where neither can be read (rootless, no cpuset)."""
    if not value:
        return
    for path in files:
        try:
            available_text = Path(path).read_text().strip()
            break
        except OSError:
            continue
    else:
        return
    available = _uint_list(available_text)
    try:
        wanted = _uint_list(value, max([8192, *available]))
    except ValueError as e:
        raise StrataError(f"Invalid value {value} for cpuset {what}: {e}", exit_code=exit_code) from None
    if not wanted <= available:
        raise StrataError(f"Requested {missing} are not available - requested {value}, available: {available_text}",
                          exit_code=exit_code)


def check_cpuset(cpuset: str, exit_code: int = 1) -> None:
    """``--cpuset-cpus`` against the CPUs the cgroup has."""
    _check_cpuset_list(cpuset, ("/sys/fs/cgroup/cpuset/cpuset.cpus", "/sys/fs/cgroup/cpuset.cpus.effective"),
                       "cpus", "CPUs", exit_code)


def _check_reservation(mem: int, reservation: int) -> None:
    if reservation > 0 and reservation < _MIN_MEMORY:
        raise StrataError("Minimum memory reservation allowed is 6MB")
    if mem > 0 and reservation > 0 and mem < reservation:
        raise StrataError("Minimum memory limit can not be less than memory reservation limit, see usage")


def _check_kernel_and_rt(fields: dict[str, Any], warnings: list[str]) -> None:
    """The daemon's kernel-memory (deprecated: a warning; at least 6MB), OOM score and real-time checks."""
    kernel = int(fields.get("KernelMemory") or 0)
    if kernel > 0:
        warnings.append("Specifying a kernel memory limit is deprecated and will be removed in a future release.")
    if 0 < kernel < _MIN_MEMORY:
        raise StrataError("Minimum kernel memory limit allowed is 6MB")
    oom = int(fields.get("OomScoreAdj") or 0)
    if not -1000 <= oom <= 1000:
        raise StrataError(f"Invalid value {oom}, range for oom score adj is [-1000, 1000]")
    period, runtime = int(fields.get("CpuRealtimePeriod") or 0), int(fields.get("CpuRealtimeRuntime") or 0)
    if period and runtime and runtime > period:
        raise StrataError("cpu real-time runtime cannot be higher than cpu real-time period")


def _check_cfs(nano: int, period: int, quota: int) -> None:
    """The daemon's CFS checks: ``--cpus`` excludes ``--cpu-period``/``--cpu-quota``; their ranges."""
    if nano > 0 and period > 0:
        raise StrataError("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise StrataError("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    _check_cpus(nano)
    if period != 0 and not 1000 <= period <= 1_000_000:
        raise StrataError("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise StrataError("CPU cfs quota can not be less than 1ms (i.e. 1000)")


def check_cpuset_mems(mems: str, exit_code: int = 1) -> None:
    """``--cpuset-mems`` against the memory nodes the cgroup has."""
    _check_cpuset_list(mems, ("/sys/fs/cgroup/cpuset/cpuset.mems", "/sys/fs/cgroup/cpuset.mems.effective"),
                       "mems", "memory nodes", exit_code)


def _extra(extra: dict[str, Any] | None) -> dict[str, Any]:
    """The HostConfig fields of the CFS/realtime/reservation flags, Docker's zero values where not given."""
    out = {"CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetMems": "",
           "MemoryReservation": 0, "KernelMemory": 0, "BlkioWeightDevice": []}
    out.update({k: v for k, v in (extra or {}).items() if v is not None})
    return out


def resource_host_config(memory: str | None, memory_swap: str | None, cpus: str | None, cpu_shares: int,
                         cpuset_cpus: str, pids_limit: int | None, ulimits: list[str], *, blkio_weight: int = 0,
                         oom_kill_disable: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The HostConfig resource fields of the flags (``extra``: ``CpuPeriod``, ``CpuQuota``,
    ``CpusetMems``, ``MemoryReservation`` … already parsed), with the daemon's checks (its warnings under
    ``_warnings``, for the CLI to print and drop)."""
    mem = parse_ram(memory) if memory else 0
    swap = -1 if memory_swap == "-1" else (parse_ram(memory_swap) if memory_swap else 0)
    _check_memory(mem, swap)
    more = _extra(extra)
    _check_reservation(mem, more["MemoryReservation"])
    warnings: list[str] = []
    _check_kernel_and_rt(more, warnings)
    nano = parse_cpus(cpus) if cpus else 0
    _check_cfs(nano, more["CpuPeriod"], more["CpuQuota"])
    check_cpuset(cpuset_cpus)
    check_cpuset_mems(more["CpusetMems"])
    weight = _blkio_weight(blkio_weight, warnings)
    if more.get("BlkioWeightDevice") and not _weight_device_supported():
        warnings.append("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. "
                        "Weight-device discarded.")
        more["BlkioWeightDevice"] = []
    if oom_kill_disable and not oom_kill_disable_supported():
        warnings.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        oom_kill_disable = False
    elif oom_kill_disable and not mem:
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, this can result "
                        "in the system running out of resources.")
    return {"Memory": mem, "MemorySwap": 2 * mem if mem and not swap else swap, "NanoCpus": nano,
            "CpuShares": cpu_shares, "CpusetCpus": cpuset_cpus, "PidsLimit": pids_limit,
            "Ulimits": [parse_ulimit(u) for u in ulimits] or None, "BlkioWeight": weight,
            "OomKillDisable": oom_kill_disable, **more, "_warnings": warnings}


def resource_warnings(hc: dict[str, Any]) -> list[str]:
    """The daemon's warnings of a new HostConfig (taken out of it)."""
    return list(hc.pop("_warnings", None) or [])


_UPDATABLE = ("BlkioWeight", "CpuShares", "NanoCpus", "CpusetCpus", "Memory", "MemorySwap", "CpuPeriod", "CpuQuota",
              "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetMems", "MemoryReservation", "KernelMemory")


def _check_cfs_update(hc: dict[str, Any], changes: dict[str, Any]) -> None:
    """Docker's UpdateContainer: ``--cpus`` and ``--cpu-period``/``--cpu-quota`` exclude each other
    across updates too."""
    cid = hc.get("_id", "")
    for field, other, what in (("NanoCpus", "CpuPeriod", "CPU Period"), ("NanoCpus", "CpuQuota", "CPU Quota"),
                               ("CpuPeriod", "NanoCpus", "CPU Period"), ("CpuQuota", "NanoCpus", "CPU Quota")):
        if int(changes.get(field) or 0) > 0 and int(hc.get(other) or 0) > 0:
            raise StrataError(f"Cannot update container {cid}: Conflicting options: {what} cannot be updated as "
                              "NanoCPUs has already been set")


def merge_update(cid: str, hc: dict[str, Any], changes: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Docker's UpdateContainer: the given (non-zero) fields over the container's, with its rules;
    (the new HostConfig, the warnings)."""
    mem, swap = int(changes.get("Memory") or 0), int(changes.get("MemorySwap") or 0)
    _check_memory(mem, swap if mem else 0)
    _check_reservation(mem, int(changes.get("MemoryReservation") or 0))
    warnings: list[str] = []
    _check_kernel_and_rt(changes, warnings)
    _check_cfs(int(changes.get("NanoCpus") or 0), int(changes.get("CpuPeriod") or 0),
               int(changes.get("CpuQuota") or 0))
    check_cpuset_mems(str(changes.get("CpusetMems") or ""))
    _check_cfs_update({**hc, "_id": cid}, changes)
    changes = {**changes, "BlkioWeight": _blkio_weight(int(changes.get("BlkioWeight") or 0), warnings)}
    if mem and mem > int(hc.get("MemorySwap") or 0) and not swap:
        raise StrataError(f"Cannot update container {cid}: Memory limit should be smaller than already set "
                          "memoryswap limit, update the memoryswap at the same time")
    out = dict(hc)
    for key in _UPDATABLE:
        if changes.get(key):
            out[key] = changes[key]
    if changes.get("PidsLimit") is not None:
        out["PidsLimit"] = changes["PidsLimit"]
    return out, warnings


def runc_update_args(hc: dict[str, Any]) -> dict[str, Any]:
    """The OCI LinuxResources ``runc update -r`` takes for a HostConfig (zero: left as it is)."""
    spec: dict[str, Any] = {"linux": {}, "process": {"args": []}, "mounts": []}
    apply_resources(spec, {k: hc.get(k) for k in (*_UPDATABLE, "PidsLimit")}, update=True)
    res: dict[str, Any] = spec["linux"].get("resources", {})
    if res.get("pids", {}).get("limit", 0) < 0:
        res["pids"]["limit"] = -1
    return res


def _swap_accounting() -> bool:
    """cgroup v1 without ``memory.memsw.*`` (swapaccount=0) takes no swap limit: runc would fail."""
    v1 = Path("/sys/fs/cgroup/memory")
    return not v1.is_dir() or (v1 / "memory.memsw.limit_in_bytes").exists()


def _apply_memory(res: dict[str, Any], hc: dict[str, Any]) -> None:
    memory: dict[str, Any] = {}
    if hc.get("Memory"):
        swap = int(hc.get("MemorySwap") or 0) or 2 * int(hc["Memory"])
        memory = {"limit": int(hc["Memory"]), **({"swap": swap} if _swap_accounting() else {})}
    elif int(hc.get("MemorySwap") or 0) > 0 and _swap_accounting():  # update's --memory-swap alone: as
        memory = {"swap": int(hc["MemorySwap"])}  # Docker, the runtime is given it (and words any refusal)
    if hc.get("MemoryReservation"):
        memory["reservation"] = int(hc["MemoryReservation"])
    if hc.get("KernelMemory"):
        memory["kernel"] = int(hc["KernelMemory"])
    if hc.get("MemorySwappiness") is not None:
        memory["swappiness"] = int(hc["MemorySwappiness"])
    if memory:
        res["memory"] = memory


def _apply_cpu(res: dict[str, Any], hc: dict[str, Any]) -> None:
    cpu: dict[str, Any] = {}
    if hc.get("NanoCpus"):
        cpu.update(period=100000, quota=int(hc["NanoCpus"]) * 100000 // 1_000_000_000)
    for field, key, kind in (("CpuShares", "shares", int), ("CpusetCpus", "cpus", str), ("CpuPeriod", "period", int),
                             ("CpuQuota", "quota", int), ("CpusetMems", "mems", str),
                             ("CpuRealtimePeriod", "realtimePeriod", int),
                             ("CpuRealtimeRuntime", "realtimeRuntime", int)):
        if hc.get(field):
            cpu[key] = kind(hc[field])
    if cpu:
        res["cpu"] = cpu


_THROTTLES = (("BlkioDeviceReadBps", "throttleReadBpsDevice"), ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
              ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"), ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice"))


def _device_numbers(path: str) -> dict[str, int]:
    """The block device's major and minor (the daemon stats it at start: its error if missing)."""
    try:
        rdev = os.stat(path).st_rdev
    except OSError as e:
        raise StrataError(f"stat {path}: {(e.strerror or str(e)).lower()}") from None
    return {"major": os.major(rdev), "minor": os.minor(rdev)}


def _apply_block_io(res: dict[str, Any], hc: dict[str, Any]) -> None:
    block: dict[str, Any] = {}
    if hc.get("BlkioWeight"):
        block["weight"] = int(hc["BlkioWeight"])
    if hc.get("BlkioWeightDevice"):
        block["weightDevice"] = [{**_device_numbers(d["Path"]), "weight": int(d["Weight"])}
                                 for d in hc["BlkioWeightDevice"]]
    for field, key in _THROTTLES:
        if hc.get(field):
            block[key] = [{**_device_numbers(d["Path"]), "rate": int(d["Rate"])} for d in hc[field]]
    if block:
        res["blockIO"] = block


def apply_resources(spec: dict[str, Any], hc: dict[str, Any], *, update: bool = False) -> None:
    """Put the HostConfig's limits, rlimits, init and privileges into an OCI spec built by ``build_spec``
    (at start the daemon checks again: a swap limit an update gave without a memory limit is refused)."""
    if not update and not hc.get("Memory") and int(hc.get("MemorySwap") or 0) > 0:
        raise StrataError("You should always set the Memory limit when using Memoryswap limit, see usage")
    res = spec["linux"].setdefault("resources", {})
    _apply_memory(res, hc)
    _apply_cpu(res, hc)
    if hc.get("OomScoreAdj"):
        spec["process"]["oomScoreAdj"] = int(hc["OomScoreAdj"])
    if hc.get("PidsLimit"):
        res["pids"] = {"limit": int(hc["PidsLimit"])}
    _apply_block_io(res, hc)
    if hc.get("OomKillDisable"):
        res.setdefault("memory", {})["disableOOMKiller"] = True
    if hc.get("Ulimits"):
        spec["process"]["rlimits"] = [{"type": "RLIMIT_" + u["Name"].upper(), "hard": u["Hard"], "soft": u["Soft"]}
                                      for u in hc["Ulimits"]]
    if hc.get("Init"):
        spec["mounts"].append({"destination": INIT_PATH, "type": "bind", "source": INIT_BINARY,
                               "options": ["rbind", "ro"]})
        spec["process"]["args"] = [INIT_PATH, "--", *spec["process"]["args"]]
    if hc.get("Privileged"):
        spec["linux"]["maskedPaths"], spec["linux"]["readonlyPaths"] = [], []
        spec["linux"].pop("seccomp", None)
        res["devices"] = [{"allow": True, "access": "rwm"}]
        for m in spec["mounts"]:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
