"""The content hashes in COPY/ADD history lines (``COPY file:<hex> in /dst ``), computed as Docker's
classic builder does: per entry, sha256 over tarsum v1's header fields (name, mode with type bits,
uid, gid, size, typeflag, linkname, empty uname and gname, devmajor, devminor, security xattrs) then the
content; a directory is ``dir:`` + sha256 of its entries' sorted sums joined by commas; several
sources are ``multi:`` + sha256 of their hashes joined in order."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Callable, Iterator

from strata.build.keyhash import sha256, sha256_hex
from strata.build.summemo import SumMemo

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = ["entry_sum", "hash_sources", "header_fields", "string_slice_hash"]

_TYPEFLAGS = {stat.S_IFREG: "0", stat.S_IFLNK: "2", stat.S_IFCHR: "3", stat.S_IFBLK: "4", stat.S_IFDIR: "5", stat.S_IFIFO: "6"}


def _mode(st: os.stat_result) -> int:
    """Go's tar.FileInfoHeader permission and special bits, with Docker's file type bits added."""
    mode = stat.S_IMODE(st.st_mode) & 0o777
    mode |= stat.S_IMODE(st.st_mode) & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX)
    kind = stat.S_IFMT(st.st_mode)
    return mode | (kind if kind in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK) else 0)


_NAMES: dict[tuple[str, int], str] = {}  # the host's user and group names, looked up once a build


def _owner_name(kind: str, ident: int, lookup: Callable[[int], str]) -> str:
    known = _NAMES.get((kind, ident))
    if known is not None:
        return known
    try:
        name = lookup(ident)
    except (KeyError, OverflowError):
        name = ""
    _NAMES[(kind, ident)] = name
    return name


def header_fields(member: Any) -> tuple[list[tuple[str, str]], list[tuple[str, bytes]]]:
    """A context tar entry's header as the daemon's tarsum reads it (its name, mode and owners as the
    tar has them; owner names blanked; a typeflag ``\\0`` is ``0``), and its xattrs, sorted."""
    from strata.archive.tarread import xattrs_of

    name = member.name + "/" if member.isdir() and not member.name.endswith("/") else member.name
    flag = member.type.decode("latin-1") if member.type != b"\0" else "0"
    fields = [("name", name), ("mode", str(member.mode)), ("uid", str(member.uid)), ("gid", str(member.gid)),
              ("size", str(member.size if member.isreg() else 0)), ("typeflag", flag), ("linkname", member.linkname),
              ("uname", ""), ("gname", ""), ("devmajor", str(member.devmajor)), ("devminor", str(member.devminor))]  # fmt: skip
    return fields, sorted(xattrs_of(member).items())


def entry_sum(
    dir_fd: int, name: str, rel: str, st: os.stat_result, *, from_context: bool = True, memo: SumMemo | None = None,
    header: tuple[list[tuple[str, str]], list[tuple[str, bytes]]] | None = None,
) -> str:  # fmt: skip
    """One entry's sum: ``rel`` is its path in its root (a directory gets a trailing ``/``). Docker
    sends a context owned by 0:0 and hashes it without owner names; an image's files (``--from``)
    carry their owners and the names the daemon's host gives them; a context tar's entries hash as
    its ``header`` says (``header_fields``), their content as extracted."""
    if header is not None:
        return _tar_entry_sum(dir_fd, name, st, header)
    memo_key = SumMemo.key(rel, st) if memo is not None and stat.S_ISREG(st.st_mode) and st.st_size > 0 else ""
    known = memo.get(memo_key) if memo is not None and memo_key else None
    if known is not None:
        return known
    is_dir = stat.S_ISDIR(st.st_mode)
    link = os.readlink(name, dir_fd=dir_fd) if stat.S_ISLNK(st.st_mode) else ""
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    dev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else (0, 0)
    fields = [
        ("name", rel + ("/" if is_dir and not rel.endswith("/") else "")), ("mode", str(_mode(st))),
        ("uid", "0" if from_context else str(st.st_uid)), ("gid", "0" if from_context else str(st.st_gid)),
        ("size", str(size)),
        ("typeflag", _TYPEFLAGS.get(stat.S_IFMT(st.st_mode), "0")), ("linkname", link),
        ("uname", "" if from_context else _owner_name("u", st.st_uid, lambda u: pwd.getpwuid(u).pw_name)),
        ("gname", "" if from_context else _owner_name("g", st.st_gid, lambda g: grp.getgrgid(g).gr_name)),
        ("devmajor", str(dev[0])), ("devminor", str(dev[1])),
    ]  # fmt: skip
    h = _content_hasher() if stat.S_ISREG(st.st_mode) and size > 0 else sha256(b"")
    h.update("".join(key + value for key, value in fields).encode("utf-8", "surrogateescape"))  # one update: the same bytes
    if stat.S_ISREG(st.st_mode) and size > 0:
        _file_rest(h, dir_fd, name)
    elif not stat.S_ISLNK(st.st_mode):
        cap = _capability(dir_fd, name)
        if cap is not None:
            h.update(b"security.capability" + cap)
    if memo is not None and memo_key:
        memo.put(memo_key, h.hexdigest())
    return h.hexdigest()


def _tar_entry_sum(dir_fd: int, name: str, st: os.stat_result,
                   header: tuple[list[tuple[str, str]], list[tuple[str, bytes]]]) -> str:  # fmt: skip
    fields, xattrs = header
    h = _content_hasher() if stat.S_ISREG(st.st_mode) and st.st_size > 0 else sha256(b"")
    for key, value in fields:
        h.update(key.encode() + value.encode("utf-8", "surrogateescape"))
    for key, raw in xattrs:
        h.update(key.encode("utf-8", "surrogateescape") + raw)
    if stat.S_ISREG(st.st_mode) and st.st_size > 0:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return str(h.hexdigest())


def _file_rest(h: Any, dir_fd: int, name: str) -> None:
    """A regular file's capability xattr, then its content, through one descriptor (a file with
    content must open; an empty one is hashed without, as before, by ``_capability``)."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        try:
            h.update(b"security.capability" + os.getxattr(fd, "security.capability"))
        except OSError:
            pass
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
    finally:
        os.close(fd)


def _capability(dir_fd: int, name: str) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        return os.getxattr(fd, "security.capability")
    except OSError:
        return None
    finally:
        os.close(fd)


def _content_hasher() -> Any:
    """A file's sum reads its content: OpenSSL's sha256 (loaded by the first file hashed; a header
    alone, a directory's or a link's, is hashed by ``build.keyhash``)."""
    import hashlib

    return hashlib.sha256()


def string_slice_hash(prefix: str, items: list[str]) -> str:
    return f"{prefix}:" + sha256_hex(",".join(items).encode())


def hash_sources(items: Iterator[tuple[str, list[str]]]) -> str:
    """``items``: per source, its kind (``file``/``dir``) and the sums of its entries."""
    hashes = [f"file:{sums[0]}" if kind == "file" else string_slice_hash("dir", sorted(sums)) for kind, sums in items]
    return hashes[0] if len(hashes) == 1 else string_slice_hash("multi", hashes)
