"""``stats``: a running container's usage, read where the kernel keeps it — its cgroup (v1 or v2,
found from ``/proc/<pid>/cgroup`` of its init process) and its network namespace's counters — and
turned into Docker's figures (CPU % from two samples, memory without the inactive page cache, the
limit capped at the host's memory, block I/O read/write, PIDs)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Sample", "bytes_size", "cgroup_usage", "has_own_cgroup", "own_cgroup", "owns_cgroup", "pidns_members", "sample", "sample_all", "stats_row",
           "system_cpu_ns"]

_CGROUP = Path("/sys/fs/cgroup")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


@dataclass
class Sample:
    """One reading of a container's counters (zeros when it does not run)."""

    cpu_ns: int = 0
    system_ns: int = 0
    online_cpus: int = 1
    memory: int = 0
    limit: int = 0
    net_rx: int = 0
    net_tx: int = 0
    read: int = 0
    write: int = 0
    pids: int = 0


def bytes_size(size: float) -> str:
    """go-units ``BytesSize``: binary units, ``%.4g`` (``796KiB``, ``23.54GiB``)."""
    value, unit = float(size), 0
    while value >= 1024.0 and unit < len(_BINARY) - 1:
        value /= 1024.0
        unit += 1
    return "%.4g%s" % (value, _BINARY[unit])  # noqa: UP031 - Go's %.4g


def system_cpu_ns() -> int:
    """The host's CPU time (``/proc/stat``'s first seven fields) in nanoseconds, as Docker reads it."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _int(path: Path) -> int:
    text = _read(path).strip()
    return int(text) if text.lstrip("-").isdigit() else 0


def own_cgroup(rel: str, cid: str) -> str | None:
    """The container's own cgroup from ``rel``, a cgroup its process is in: runc made it with the container's
    ID in its name (``/strata/<id>``; a rootless one below a delegated cgroup, ``strata-<id>``), and the
    process may have moved below it (systemd, Docker in Docker: ``/strata/<id>/init``). None when there is
    none: a rootless container without delegation stays in its starter's cgroup, whose figures are not its own."""
    parts = rel.rstrip("/").split("/")
    found = [i for i, part in enumerate(parts) if cid and cid in part]
    return "/".join(parts[: found[-1] + 1]) if found else None


def owns_cgroup(rel: str, cid: str) -> bool:
    """Whether the cgroup ``rel`` is the container's own or below it (see :func:`own_cgroup`)."""
    return own_cgroup(rel, cid) is not None


def has_own_cgroup(pid: int, cid: str) -> bool:
    """Whether the container's init (``pid``) is in a cgroup of the container's own (to freeze, to update)."""
    return any(owns_cgroup(line.split(":", 2)[2], cid)
               for line in _read(Path(f"/proc/{pid}/cgroup")).splitlines() if line.count(":") >= 2)


def pidns_members(pid: int) -> list[int]:
    """Every process in ``pid``'s pid namespace (when it is not ours), else just ``pid``."""
    try:
        ns = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return [pid]
    if ns == os.readlink("/proc/self/ns/pid"):
        return [pid]
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _cgroup_dirs(pid: int, cid: str) -> dict[str, Path]:
    """Controller -> the container's own cgroup directory (``""``: the unified v2 hierarchy)."""
    out: dict[str, Path] = {}
    for line in _read(Path(f"/proc/{pid}/cgroup")).splitlines():
        _, controllers, found = line.split(":", 2)
        rel = own_cgroup(found, cid)
        if rel is None:
            continue
        if not controllers:
            base = _CGROUP if (_CGROUP / "cgroup.controllers").exists() else _CGROUP / "unified"
            out[""] = base / rel.lstrip("/")
            continue
        for ctrl in controllers.split(","):
            for mount in (_CGROUP / ctrl, _CGROUP / controllers):
                if mount.is_dir():
                    out[ctrl] = mount / rel.lstrip("/")
                    break
    return out


def _stat_map(path: Path) -> dict[str, int]:
    out = {}
    for line in _read(path).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _host_memory() -> int:
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _memory(dirs: dict[str, Path]) -> tuple[int, int]:
    """(usage without inactive file pages, limit capped at the host's memory)."""
    if "memory" in dirs:
        d = dirs["memory"]
        usage, limit = _int(d / "memory.usage_in_bytes"), _int(d / "memory.limit_in_bytes")
        inactive = _stat_map(d / "memory.stat").get("total_inactive_file", 0)
    elif "" in dirs:
        d = dirs[""]
        usage, limit = _int(d / "memory.current"), _int(d / "memory.max")
        inactive = _stat_map(d / "memory.stat").get("inactive_file", 0)
    else:
        return 0, 0
    host = _host_memory()
    if limit <= 0 or (host and limit > host):
        limit = host
    return (usage - inactive if inactive < usage else usage), limit


def _cpu_ns(dirs: dict[str, Path]) -> int:
    if "cpuacct" in dirs:
        return _int(dirs["cpuacct"] / "cpuacct.usage")
    if "" in dirs:
        return _stat_map(dirs[""] / "cpu.stat").get("usage_usec", 0) * 1000
    return 0


def _block_io(dirs: dict[str, Path]) -> tuple[int, int]:
    read = write = 0
    if "blkio" in dirs:
        for line in _read(dirs["blkio"] / "blkio.throttle.io_service_bytes_recursive").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2].isdigit():
                read += int(parts[2]) if parts[1].lower() == "read" else 0
                write += int(parts[2]) if parts[1].lower() == "write" else 0
    elif "" in dirs:
        for line in _read(dirs[""] / "io.stat").splitlines():
            values = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
            read += int(values.get("rbytes", 0))
            write += int(values.get("wbytes", 0))
    return read, write


def _pids(dirs: dict[str, Path]) -> int:
    d = dirs.get("pids", dirs.get(""))
    return _int(d / "pids.current") if d is not None else 0


def _network(pid: int) -> tuple[int, int]:
    """Bytes received and sent on the container's interfaces (its netns; loopback left out)."""
    rx = tx = 0
    for line in _read(Path(f"/proc/{pid}/net/dev")).splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if name.strip() != "lo" and len(fields) >= 9:
            rx, tx = rx + int(fields[0]), tx + int(fields[8])
    return rx, tx


def cgroup_usage(dirs: dict[str, Path]) -> Sample:
    """CPU, memory, block I/O and PIDs from cgroup directories (controller -> dir; ``""``: v2)."""
    memory, limit = _memory(dirs)
    read, write = _block_io(dirs)
    return Sample(cpu_ns=_cpu_ns(dirs), memory=memory, limit=limit, read=read, write=write, pids=_pids(dirs))


def sample(pid: int, network: str, system_ns: int, cid: str) -> Sample:
    """Read a running container's counters (``pid``: its init process; 0 = not running). Without a cgroup
    of its own (rootless, undelegated) there are no CPU, memory or block I/O figures; its PIDs are those
    of its pid namespace."""
    if pid <= 0:
        return Sample()
    dirs = _cgroup_dirs(pid, cid)
    out = cgroup_usage(dirs)
    if not dirs:
        out.pids = len(pidns_members(pid))
    out.net_rx, out.net_tx = (0, 0) if network == "host" else _network(pid)
    out.system_ns, out.online_cpus = system_ns, os.sysconf("SC_NPROCESSORS_ONLN")
    return out


def sample_all(targets: list[tuple[int, str, str]], interval: float = 1.0) -> list[tuple[Sample, Sample]]:
    """Two readings ``interval`` apart of each (pid, network mode, container ID): Docker's CPU % needs both."""
    first_sys = system_cpu_ns()
    first = [sample(pid, net, first_sys, cid) for pid, net, cid in targets]
    if any(pid > 0 for pid, _, _ in targets):
        time.sleep(interval)
    second_sys = system_cpu_ns()
    return list(zip(first, [sample(pid, net, second_sys, cid) for pid, net, cid in targets], strict=True))


def _percent(part: float, whole: float) -> str:
    return f"{part / whole * 100.0 if whole else 0.0:.2f}%"


def stats_row(prev: Sample, cur: Sample) -> dict[str, Any]:
    """Docker's stats columns (CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs) of two readings."""
    from strata.compat.units import human_size

    cpu_delta, sys_delta = cur.cpu_ns - prev.cpu_ns, cur.system_ns - prev.system_ns
    cpu = cpu_delta / sys_delta * cur.online_cpus if cpu_delta > 0 and sys_delta > 0 else 0.0
    return {"CPUPerc": _percent(cpu, 1.0), "MemUsage": f"{bytes_size(cur.memory)} / {bytes_size(cur.limit)}",
            "MemPerc": _percent(cur.memory, cur.limit),
            "NetIO": f"{human_size(cur.net_rx)} / {human_size(cur.net_tx)}",
            "BlockIO": f"{human_size(cur.read)} / {human_size(cur.write)}", "PIDs": str(cur.pids)}
