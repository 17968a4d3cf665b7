"""Resource limits and privileges as Docker's ``run`` flags set them: ``-m``/``--memory-swap``,
``--cpus``/``--cpu-shares``/``--cpuset-cpus``, ``--pids-limit``, ``--blkio-weight``, ``--oom-kill-disable``,
``--ulimit``, ``--init`` (tini, as Docker's docker-init), ``--cap-add``/``--cap-drop``, ``--privileged``.
Parsed into HostConfig fields with Docker's errors and warnings, applied to the OCI spec (the runtime
writes the cgroups, v1 or v2) and, for ``update``, to a running container's cgroups (``runc update``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from strata.errors import StrataError

__all__ = [
    "INIT_BINARY",
    "INIT_PATH",
    "all_capabilities",
    "apply_resources",
    "blkio_weight_supported",
    "capabilities",
    "check_cpuset",
    "merge_update",
    "oom_kill_disable_supported",
    "parse_cpus",
    "parse_int64",
    "parse_ram",
    "parse_uint16",
    "parse_ulimit",
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


def oom_kill_disable_supported() -> bool:
    """cgroup v1's ``memory.oom_control`` (v2 has no switch: Docker discards the flag there)."""
    return Path("/sys/fs/cgroup/memory/memory.oom_control").exists()


def _check_memory(mem: int, swap: int) -> None:
    if mem and mem < _MIN_MEMORY:
        raise StrataError("Minimum memory limit allowed is 6MB", exit_code=125)
    if swap and not mem:
        raise StrataError("You should always set the Memory limit when using Memoryswap limit, see usage",
                          exit_code=125)
    if swap > 0 and swap < mem:
        raise StrataError("Minimum memoryswap limit should be larger than memory limit, see usage", exit_code=125)


def _check_cpus(nano: int) -> None:
    ncpu = os.cpu_count() or 1
    if nano and not 10_000_000 <= nano <= ncpu * 1_000_000_000:
        raise StrataError(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available",
                          exit_code=125)


def _blkio_weight(weight: int, warnings: list[str]) -> int:
    """The daemon's rule: discarded (a warning) where the kernel has no weight, else 10-1000."""
    if not weight:
        return 0
    if not blkio_weight_supported():
        warnings.append("Your kernel does not support Block I/O weight or the cgroup is not mounted. "
                        "Weight discarded.")
        return 0
    if not 10 <= weight <= 1000:
        raise StrataError("Range of blkio weight is from 10 to 1000", exit_code=125)
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


def check_cpuset(cpuset: str, exit_code: int = 125) -> None:
    """The daemon's check of ``--cpuset-cpus`` against the CPUs its cgroup has (cgroup v1's cpuset root
    or v2's effective set); nothing to check where neither can be read (rootless, no cpuset)."""
    if not cpuset:
        return
    for path in ("/sys/fs/cgroup/cpuset/cpuset.cpus", "/sys/fs/cgroup/cpuset.cpus.effective"):
        try:
            available_text = Path(path).read_text().strip()
            break
        except OSError:
            continue
    else:
        return
    available = _uint_list(available_text)
    try:
        wanted = _uint_list(cpuset, max([8192, *available]))
    except ValueError as e:
        raise StrataError(f"Invalid value {cpuset} for cpuset cpus: {e}", exit_code=exit_code) from None
    if not wanted <= available:
        raise StrataError(f"Requested CPUs are not available - requested {cpuset}, available: {available_text}",
                          exit_code=exit_code)


def resource_host_config(memory: str | None, memory_swap: str | None, cpus: str | None, cpu_shares: int,
                         cpuset_cpus: str, pids_limit: int | None, ulimits: list[str], *, blkio_weight: int = 0,
                         oom_kill_disable: bool = False) -> dict[str, Any]:
    """The HostConfig resource fields of the flags, with the daemon's checks (its warnings under
    ``_warnings``, for the CLI to print and drop)."""
    mem = parse_ram(memory) if memory else 0
    swap = -1 if memory_swap == "-1" else (parse_ram(memory_swap) if memory_swap else 0)
    _check_memory(mem, swap)
    nano = parse_cpus(cpus) if cpus else 0
    _check_cpus(nano)
    check_cpuset(cpuset_cpus)
    warnings: list[str] = []
    weight = _blkio_weight(blkio_weight, warnings)
    if oom_kill_disable and not oom_kill_disable_supported():
        warnings.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        oom_kill_disable = False
    elif oom_kill_disable and not mem:
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, this can result "
                        "in the system running out of resources.")
    return {"Memory": mem, "MemorySwap": 2 * mem if mem and not swap else swap, "NanoCpus": nano,
            "CpuShares": cpu_shares, "CpusetCpus": cpuset_cpus, "PidsLimit": pids_limit,
            "Ulimits": [parse_ulimit(u) for u in ulimits] or None, "BlkioWeight": weight,
            "OomKillDisable": oom_kill_disable, "_warnings": warnings}


def resource_warnings(hc: dict[str, Any]) -> list[str]:
    """The daemon's warnings of a new HostConfig (taken out of it)."""
    return list(hc.pop("_warnings", None) or [])


_UPDATABLE = ("BlkioWeight", "CpuShares", "NanoCpus", "CpusetCpus", "Memory", "MemorySwap")


def merge_update(cid: str, hc: dict[str, Any], changes: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Docker's UpdateContainer: the given (non-zero) fields over the container's, with its rules;
    (the new HostConfig, the warnings)."""
    mem, swap = int(changes.get("Memory") or 0), int(changes.get("MemorySwap") or 0)
    _check_memory(mem, swap if mem else 0)
    _check_cpus(int(changes.get("NanoCpus") or 0))
    warnings: list[str] = []
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
    apply_resources(spec, {k: hc.get(k) for k in (*_UPDATABLE, "PidsLimit")})
    res: dict[str, Any] = spec["linux"].get("resources", {})
    if res.get("pids", {}).get("limit", 0) < 0:
        res["pids"]["limit"] = -1
    return res


def _swap_accounting() -> bool:
    """cgroup v1 without ``memory.memsw.*`` (swapaccount=0) takes no swap limit: runc would fail."""
    v1 = Path("/sys/fs/cgroup/memory")
    return not v1.is_dir() or (v1 / "memory.memsw.limit_in_bytes").exists()


def apply_resources(spec: dict[str, Any], hc: dict[str, Any]) -> None:
    """Put the HostConfig's limits, rlimits, init and privileges into an OCI spec built by ``build_spec``."""
    res = spec["linux"].setdefault("resources", {})
    if hc.get("Memory"):
        swap = int(hc.get("MemorySwap") or 0) or 2 * int(hc["Memory"])
        res["memory"] = {"limit": int(hc["Memory"]), **({"swap": swap} if _swap_accounting() else {})}
    cpu: dict[str, Any] = {}
    if hc.get("NanoCpus"):
        cpu.update(period=100000, quota=int(hc["NanoCpus"]) * 100000 // 1_000_000_000)
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = str(hc["CpusetCpus"])
    if cpu:
        res["cpu"] = cpu
    if hc.get("PidsLimit"):
        res["pids"] = {"limit": int(hc["PidsLimit"])}
    if hc.get("BlkioWeight"):
        res["blockIO"] = {"weight": int(hc["BlkioWeight"])}
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
