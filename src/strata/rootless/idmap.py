"""Subordinate id ranges (``/etc/subuid``, ``/etc/subgid``) and the full mapping built from them:
container root -> the user, 1.. -> the user's ranges in file order (Podman's default mapping)."""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from strata.errors import StrataError

__all__ = ["IDMap", "RootlessError", "UserMaps", "free_range", "mapping_args", "read_ranges", "user_maps"]

SUBUID = Path("/etc/subuid")
SUBGID = Path("/etc/subgid")


class RootlessError(StrataError):
    """A user namespace cannot be set up; the message names the fix."""

    exit_code = 125  # the engine failed before the command ran, as podman's


@dataclass(frozen=True)
class IDMap:
    """One line of ``uid_map``: ``inside`` .. ``inside+size-1`` are ``outside`` .. on the host."""

    inside: int
    outside: int
    size: int


@dataclass(frozen=True)
class UserMaps:
    user: str
    uids: tuple[IDMap, ...]
    gids: tuple[IDMap, ...]


def _entries(path: Path) -> list[tuple[str, int, int]]:
    """``(owner, start, count)`` of every well-formed line of ``path`` (shadow-utils skips the others)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3:
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if start >= 0 and count > 0:
            out.append((fields[0], start, count))
    return out


def read_ranges(path: Path, user: str, uid: int) -> list[tuple[int, int]]:
    """``(start, count)`` of every line of ``path`` for ``user`` (by name or by numeric id), in order;
    malformed lines are skipped, as shadow-utils does."""
    return [(start, count) for owner, start, count in _entries(path) if owner in (user, str(uid))]


def free_range(count: int = 65536, first: int = 100000) -> int:
    """The lowest start at or above ``first`` (useradd's SUB_UID_MIN) of ``count`` ids that no user has in
    ``/etc/subuid`` or ``/etc/subgid``: two users sharing subordinate ids could reach each other's files."""
    taken = [(start, size) for path in (SUBUID, SUBGID) for _, start, size in _entries(path)]
    start = first
    while True:
        clash = [s + n for s, n in taken if s < start + count and start < s + n]
        if not clash:
            return start
        start = max(clash)


def _full_map(own: int, ranges: list[tuple[int, int]]) -> tuple[IDMap, ...]:
    maps = [IDMap(0, own, 1)]
    inside = 1
    for start, count in ranges:
        maps.append(IDMap(inside, start, count))
        inside += count
    return tuple(maps)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        raise RootlessError(f"cannot find a user name for uid {uid}: add the user to /etc/passwd") from None


def _fix(user: str) -> str:
    start = free_range()
    ids = f"{start}-{start + 65535}"
    return f"add one with: usermod --add-subuids {ids} --add-subgids {ids} {user}"


def user_maps(uid: int | None = None, gid: int | None = None) -> UserMaps:
    """The mapping for ``uid``/``gid`` (default: this process's real ids), or a ``RootlessError`` naming
    the fix when a range or ``newuidmap``/``newgidmap`` is missing."""
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    user = _user_name(uid)
    for tool in ("newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            raise RootlessError(
                f"cannot set up a user namespace: {tool} not found: install the uidmap package (apt-get install uidmap)"
            )
    uranges = read_ranges(SUBUID, user, uid)
    if not uranges:
        raise RootlessError(f'no subuid ranges found for user "{user}" in {SUBUID}: {_fix(user)}')
    granges = read_ranges(SUBGID, user, uid)
    if not granges:
        raise RootlessError(f'no subgid ranges found for user "{user}" in {SUBGID}: {_fix(user)}')
    return UserMaps(user, _full_map(uid, uranges), _full_map(gid, granges))


def mapping_args(maps: tuple[IDMap, ...]) -> list[str]:
    """``newuidmap``'s triplets: ``inside outside size`` for each line."""
    return [str(n) for m in maps for n in (m.inside, m.outside, m.size)]
