"""``top``: the host's ``ps`` with the user's options, its lines filtered to the container's processes (the
pids of its cgroup), as Docker's daemon does (``daemon/top_unix.go``)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from strata.container.records import Container
from strata.container.stats import own_cgroup, pidns_members
from strata.errors import Conflict, StrataError

__all__ = ["container_pids", "top"]

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_V1_CONTROLLERS = ("pids", "memory", "cpu", "cpu,cpuacct", "devices", "freezer")


def _cgroup_dir(pid: int, cid: str) -> Path | None:
    """The container's own cgroup directory from ``pid``'s (the unified hierarchy, else a v1 controller's);
    None when it has none (the root cgroup's, or a rootless starter's, procs are not only its own)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    paths: dict[str, str] = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        paths[controllers or "unified"] = path
    for key in ("unified", *_V1_CONTROLLERS):
        path = own_cgroup(paths.get(key, ""), cid) or ""
        if path in ("", "/"):
            continue
        where = _unified_root() if key == "unified" else _CGROUP_ROOT / key
        candidate = where / path.lstrip("/")
        if (candidate / "cgroup.procs").exists():
            return candidate
    return None


def _unified_root() -> Path:
    hybrid = _CGROUP_ROOT / "unified"
    return hybrid if hybrid.is_dir() else _CGROUP_ROOT


def _procs_below(directory: Path) -> list[int]:
    pids: list[int] = []
    for sub, _, _ in os.walk(directory):
        try:
            pids += [int(p) for p in Path(sub, "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            continue
    return pids


def container_pids(c: Container) -> list[int]:
    """The pids of the running container's processes (containerd's ``ListPids``)."""
    directory = _cgroup_dir(c.pid, c.id)
    pids = _procs_below(directory) if directory is not None else []
    return sorted(set(pids)) if pids else pidns_members(c.pid)


def _validate(ps_args: str) -> None:
    for key, value in re.findall(r"\s+([^\s]*)=\s*(PID[^\s]*)", ps_args):
        if key != "pid":
            raise StrataError(f'specifying "{key}={value}" is not allowed')


def _ps(args: list[str], pids: list[int]) -> str:
    try:
        done = subprocess.run(["ps", *args, "-q" + ",".join(map(str, pids))], capture_output=True, check=False)
        if done.returncode != 0:  # some options (f) cannot go with q: ps without it, filtered below
            done = subprocess.run(["ps", *args], capture_output=True, check=False)
    except OSError as e:
        raise StrataError(f"ps: {e.strerror}") from None
    if done.returncode != 0:
        first = done.stderr.decode(errors="replace").split("\n", 1)[0]
        raise StrataError(f"ps: {first or f'exit status {done.returncode}'}")
    return done.stdout.decode(errors="replace")


def _parse(output: str, pids: set[int]) -> tuple[list[str], list[list[str]]]:
    lines = output.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise StrataError("Couldn't find PID field in ps output")
    at = titles.index("PID")
    processes: list[list[str]] = []
    inside = False  # a thread line ("-" as its PID, with ps -m) goes with the process above it
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        if fields[at] == "-":
            if inside:
                processes.append([*fields[: len(titles) - 1], " ".join(fields[len(titles) - 1:])])
            continue
        try:
            pid = int(fields[at])
        except ValueError:
            raise StrataError(f"Unexpected pid '{fields[at]}': strconv.Atoi: parsing \"{fields[at]}\": "
                              "invalid syntax") from None
        inside = pid in pids
        if inside:
            processes.append([*fields[: len(titles) - 1], " ".join(fields[len(titles) - 1:])])
    return titles, processes


def top(c: Container, ps_args: list[str]) -> tuple[list[str], list[list[str]]]:
    """(titles, processes) of ``ps ps_args`` (default ``-ef``) for the container's processes."""
    joined = " ".join(ps_args) or "-ef"
    _validate(joined)
    if c.state == "restarting":
        raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
    if c.state not in ("running", "paused") or not c.pid:
        raise Conflict(f"Container {c.id} is not running")
    pids = container_pids(c)
    return _parse(_ps(joined.split(" "), pids), set(pids))
