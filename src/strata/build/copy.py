"""COPY and ADD into a container's root filesystem, as Docker's classic builder does: sources from
the context (or another image's rootfs for ``--from``), destination resolved inside the rootfs,
directories copied by content, ownership from ``--chown`` (root otherwise), ``--chmod``, and ADD's
local tar archives extracted. Every path is resolved by the kernel inside its root."""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass

from strata.build.ignore import IgnoreRules
from strata.build.scoped import mkdir_all, open_in_root, stat_in_root
from strata.errors import StrataError

__all__ = ["CopyPlan", "Source", "copy_sources"]

_RW = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Source:
    root_fd: int  # the context (or a stage's rootfs) the path resolves in
    rel: str
    rules: IgnoreRules | None = None  # the context's .dockerignore


@dataclass
class CopyPlan:
    dest: str  # absolute, as Docker normalises it (a trailing / kept)
    owner: tuple[int, int] = (0, 0)
    chmod: int | None = None
    extract: bool = False  # ADD: local archives are unpacked


def copy_sources(sources: list[Source], plan: CopyPlan, rootfs_fd: int) -> None:
    """Copy every source into the rootfs at ``plan.dest`` (Docker's directory rules)."""
    dest_is_dir = plan.dest.endswith("/") or len(sources) > 1
    if not dest_is_dir:
        st = stat_in_root(rootfs_fd, plan.dest)
        dest_is_dir = st is not None and stat.S_ISDIR(st.st_mode)
    for src in sources:
        st = stat_in_root(src.root_fd, src.rel)
        if st is None:
            raise StrataError(f"stat {src.rel}: file does not exist")
        if stat.S_ISDIR(st.st_mode):
            _copy_dir_into(src, plan, rootfs_fd, plan.dest)
            continue
        if plan.extract and _is_archive(src):
            _extract(src, plan, rootfs_fd)
            continue
        target = posixpath.join(plan.dest, posixpath.basename(src.rel)) if dest_is_dir else plan.dest
        parent, name = posixpath.split(target.rstrip("/") or "/")
        dfd, _ = mkdir_all(rootfs_fd, parent, owner=plan.owner)
        sfd, sname = _parent_fd(src.root_fd, src.rel)
        try:
            _copy_entry(sfd, sname, dfd, name, plan)
        finally:
            os.close(sfd)
            os.close(dfd)


def _parent_fd(root_fd: int, rel: str) -> tuple[int, str]:
    """The directory holding ``rel`` (resolved in the root, final symlink resolved too) and the name."""
    fd = open_in_root(root_fd, rel, os.O_PATH)
    real = os.readlink(f"/proc/self/fd/{fd}")
    os.close(fd)
    parent = open_in_root(root_fd, posixpath.dirname(rel) or "/", os.O_RDONLY | os.O_DIRECTORY)
    st = (
        os.stat(posixpath.basename(rel), dir_fd=parent, follow_symlinks=False)
        if rel not in ("", ".")
        else None
    )
    if st is not None and stat.S_ISLNK(st.st_mode):  # a top-level symlink source: copy what it names
        os.close(parent)
        parent = os.open(posixpath.dirname(real), _DIR)
        return parent, posixpath.basename(real)
    return parent, posixpath.basename(rel)


def _copy_dir_into(src: Source, plan: CopyPlan, rootfs_fd: int, dest: str) -> None:
    dfd, created = mkdir_all(rootfs_fd, dest, owner=plan.owner)
    sfd = open_in_root(src.root_fd, src.rel, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if created:
            os.fchown(dfd, *plan.owner)
        _copy_tree(sfd, dfd, plan, _Filter(src.rules, "" if src.rel in ("", ".") else src.rel))
    finally:
        os.close(sfd)
        os.close(dfd)


@dataclass
class _Filter:
    """Which entries below a copied directory the context's .dockerignore leaves in."""

    rules: IgnoreRules | None
    prefix: str

    def below(self, name: str) -> _Filter:
        return _Filter(self.rules, f"{self.prefix}/{name}" if self.prefix else name)

    def skip(self, name: str, is_dir: bool) -> bool:
        if self.rules is None:
            return False
        path = self.below(name).prefix
        return self.rules.ignored(path) and not (is_dir and self.rules.may_reinclude_below(path))

    def only_walked(self, name: str) -> bool:
        """An excluded directory Docker's CLI walks for a ``!`` pattern: not sent itself (the daemon
        makes it, 0755, for what is sent below it; nothing below: it is not there)."""
        return self.rules is not None and self.rules.ignored(self.below(name).prefix)


def _kept(sfd: int, name: str, is_dir: bool, keep: _Filter) -> bool:
    if keep.skip(name, is_dir):
        return False
    if not (is_dir and keep.only_walked(name)):
        return True
    sub = os.open(name, _DIR, dir_fd=sfd)
    try:
        below = keep.below(name)
        return any(_kept(sub, n, stat.S_ISDIR(os.stat(n, dir_fd=sub, follow_symlinks=False).st_mode), below)
                   for n in os.listdir(sub))  # fmt: skip
    finally:
        os.close(sub)


def _copy_tree(sfd: int, dfd: int, plan: CopyPlan, keep: _Filter) -> None:
    for name in sorted(os.listdir(sfd)):
        is_dir = stat.S_ISDIR(os.stat(name, dir_fd=sfd, follow_symlinks=False).st_mode)
        if _kept(sfd, name, is_dir, keep):
            _copy_entry(sfd, name, dfd, name, plan, keep.below(name), implicit=is_dir and keep.only_walked(name))


def _copy_entry(sfd: int, sname: str, dfd: int, dname: str, plan: CopyPlan, keep: _Filter | None = None, *,
                implicit: bool = False) -> None:  # fmt: skip
    st = os.stat(sname, dir_fd=sfd, follow_symlinks=False)
    mode = plan.chmod if plan.chmod is not None else 0o755 if implicit else stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        _make_dir(dfd, dname, mode, plan.owner)
        sub_s = os.open(sname, _DIR, dir_fd=sfd)
        sub_d = os.open(dname, _DIR, dir_fd=dfd)
        try:
            _copy_tree(sub_s, sub_d, plan, keep or _Filter(None, ""))
            os.utime(sub_d, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(sub_s)
            os.close(sub_d)
        return
    _remove_non_dir(dfd, dname)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(sname, dir_fd=sfd), dname, dir_fd=dfd)
        os.chown(dname, *plan.owner, dir_fd=dfd, follow_symlinks=False)
        os.utime(dname, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
        return
    if not stat.S_ISREG(st.st_mode):
        return  # devices, fifos and sockets of a context are not copied
    _copy_file(sfd, sname, dfd, dname, st, mode, plan.owner)


def _copy_file(
    sfd: int, sname: str, dfd: int, dname: str, st: os.stat_result, mode: int, owner: tuple[int, int]
) -> None:
    src = os.open(sname, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sfd)
    try:
        dst = os.open(dname, _RW, 0o600, dir_fd=dfd)
        try:
            remaining = st.st_size
            while remaining > 0:
                n = os.sendfile(dst, src, None, min(remaining, 1 << 30))
                if n == 0:
                    break
                remaining -= n
            os.fchown(dst, *owner)
            os.fchmod(dst, mode)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _make_dir(dfd: int, name: str, mode: int, owner: tuple[int, int]) -> None:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        _remove_non_dir(dfd, name)
        st = None
    if st is None:
        os.mkdir(name, 0o700, dir_fd=dfd)
    os.chown(name, *owner, dir_fd=dfd, follow_symlinks=False)
    os.chmod(name, mode, dir_fd=dfd, follow_symlinks=False)


def _remove_non_dir(dfd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise StrataError(f"cannot overwrite directory {name!r} with a non-directory")
    os.unlink(name, dir_fd=dfd)


def _is_archive(src: Source) -> bool:
    # the archive code (tarfile, the decompressors) loads only for an ADD: a cached build never needs it
    from strata.archive.compression import Compression, detect_compression, open_decompressed

    with os.fdopen(open_in_root(src.root_fd, src.rel, os.O_RDONLY), "rb") as f:
        head = f.read(512)
        kind = detect_compression(head)
        if kind is None:
            return False
        if kind is Compression.NONE:
            return True
        f.seek(0)
        try:
            return len(open_decompressed(f).read(512)) == 512
        except (StrataError, OSError, EOFError):
            return False


def _extract(src: Source, plan: CopyPlan, rootfs_fd: int) -> None:
    dfd, _ = mkdir_all(rootfs_fd, plan.dest, owner=plan.owner)
    try:
        real = os.readlink(f"/proc/self/fd/{dfd}")  # the rootfs is not running: nothing swaps it
    finally:
        os.close(dfd)
    from strata.archive.apply import apply_layer

    with os.fdopen(open_in_root(src.root_fd, src.rel, os.O_RDONLY), "rb") as f:
        apply_layer(f, real, whiteouts="none", same_owner=True)
