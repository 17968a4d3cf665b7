"""Resource limits and privileges as Docker's ``run`` flags set them: ``-m``/``--memory-swap``,
``--cpus``/``--cpu-shares``/``--cpuset-cpus``, ``--pids-limit``, ``--ulimit``, ``--init`` (tini, as
Docker's docker-init), ``--cap-add``/``--cap-drop``, ``--privileged``. Parsed into HostConfig fields
with Docker's errors, applied to the OCI spec (the runtime writes the cgroups, v1 or v2)."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from typing import Any

from strata.errors import StrataError

__all__ = [
    "INIT_BINARY",
    "INIT_PATH",
    "all_capabilities",
    "apply_resources",
    "capabilities",
    "parse_cpus",
    "parse_ram",
    "parse_ulimit",
    "resource_host_config",
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
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"failed to parse {text} as a rational number") from None
    nano = value * 1_000_000_000
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


def parse_ulimit(text: str) -> dict[str, Any]:
    """``NAME=SOFT[:HARD]`` as a Docker ``Ulimit``."""
    name, eq, values = text.partition("=")
    if not eq:
        raise ValueError(f"invalid ulimit argument: {text}")
    if name not in _ULIMITS:
        raise ValueError(f"invalid ulimit type: {name}")
    soft_text, colon, hard_text = values.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if colon else soft
    except ValueError:
        raise ValueError(f"invalid ulimit argument: {text}") from None
    if soft > hard:
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


def resource_host_config(memory: str | None, memory_swap: str | None, cpus: str | None, cpu_shares: int,
                         cpuset_cpus: str, pids_limit: int | None, ulimits: list[str]) -> dict[str, Any]:
    """The HostConfig resource fields of the flags, with the daemon's checks."""
    mem = parse_ram(memory) if memory else 0
    swap = -1 if memory_swap == "-1" else (parse_ram(memory_swap) if memory_swap else 0)
    if mem and mem < _MIN_MEMORY:
        raise StrataError("Minimum memory limit allowed is 6MB", exit_code=125)
    if swap and not mem:
        raise StrataError("You should always set the Memory limit when using Memoryswap limit, see usage",
                          exit_code=125)
    if swap > 0 and swap < mem:
        raise StrataError("Minimum memoryswap limit should be larger than memory limit, see usage", exit_code=125)
    nano = parse_cpus(cpus) if cpus else 0
    ncpu = os.cpu_count() or 1
    if nano and not 10_000_000 <= nano <= ncpu * 1_000_000_000:
        raise StrataError(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available",
                          exit_code=125)
    return {"Memory": mem, "MemorySwap": swap, "NanoCpus": nano, "CpuShares": cpu_shares,
            "CpusetCpus": cpuset_cpus, "PidsLimit": pids_limit,
            "Ulimits": [parse_ulimit(u) for u in ulimits] or None}


def apply_resources(spec: dict[str, Any], hc: dict[str, Any]) -> None:
    """Put the HostConfig's limits, rlimits, init and privileges into an OCI spec built by ``build_spec``."""
    res = spec["linux"].setdefault("resources", {})
    if hc.get("Memory"):
        res["memory"] = {"limit": int(hc["Memory"]), **({"swap": int(hc["MemorySwap"])} if hc.get("MemorySwap")
                                                         else {"swap": 2 * int(hc["Memory"])})}
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
