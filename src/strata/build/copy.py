"""COPY and ADD into a container's root filesystem, as Docker's classic builder does: sources from
the context (or another image's rootfs for ``--from``), destination resolved inside the rootfs,
directories copied by content, ownership from ``--chown`` (root otherwise), ``--chmod``, and ADD's
local tar archives extracted. Every path is resolved by the kernel inside its root."""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable

from strata.build.ignore import IgnoreRules
from strata.build.scoped import mkdir_all, open_in_root, stat_in_root
from strata.errors import StrataError

TYPE_CHECKING = False  # not typing's: importing typing costs a build's start-up
if TYPE_CHECKING:
    from typing import Any, TypeVar

    _T = TypeVar("_T")

__all__ = ["CopyPlan", "Source", "copy_sources"]

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC  # any old entry is removed first
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Record:
    """Plain slotted records (a dataclass's equality and repr): importing dataclasses (inspect, ast,
    dis, tokenize) cost a cold build's first COPY ~10 ms."""

    __slots__ = ()
    _FIELDS: tuple[str, ...] = ()  # in the constructor's order (the slots are sorted)

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable, as a plain @dataclass

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"{self.__class__.__qualname__}({args})"


class Source(_Record):
    __slots__ = ("rel", "root_fd", "rules")
    _FIELDS = ("root_fd", "rel", "rules")

    def __init__(self, root_fd: int, rel: str, rules: IgnoreRules | None = None) -> None:
        self.root_fd = root_fd  # the context (or a stage's rootfs) the path resolves in
        self.rel = rel
        self.rules = rules  # the context's .dockerignore


class CopyPlan(_Record):
    __slots__ = ("chmod", "dest", "extract", "owner")
    _FIELDS = ("dest", "owner", "chmod", "extract")

    def __init__(
        self, dest: str, owner: tuple[int, int] = (0, 0), chmod: int | None = None, extract: bool = False
    ) -> None:
        self.dest = dest  # absolute, as Docker normalises it (a trailing / kept)
        self.owner = owner
        self.chmod = chmod
        self.extract = extract  # ADD: local archives are unpacked


def copy_sources(sources: list[Source], plan: CopyPlan, rootfs_fd: int) -> None:
    """Copy every source into the rootfs at ``plan.dest`` (Docker's directory rules)."""
    dest_is_dir = plan.dest.endswith("/") or len(sources) > 1
    if not dest_is_dir:
        st = stat_in_root(rootfs_fd, plan.dest)
        dest_is_dir = st is not None and stat.S_ISDIR(st.st_mode)
    _check_owner(sources, plan, dest_is_dir)
    data = _DataCopies()
    try:
        for src in sources:
            _copy_source(src, plan, rootfs_fd, dest_is_dir, data)
    finally:
        data.finish()


def _check_owner(sources: list[Source], plan: CopyPlan, dest_is_dir: bool) -> None:
    """Before anything is written: an owner this user namespace does not map (rootless ``--chown`` beyond
    the subordinate ranges) refused in Podman's words, naming the first destination."""
    from strata.container.rootfs import mount_xattr_prefix

    if mount_xattr_prefix() == "trusted.overlay.":  # not in a user namespace: every owner is mapped
        return  # (archive.apply, the error's home, is not light: a COPY as root never loads it)
    from strata.archive.apply import owner_mapped, unmapped_owner_error

    if owner_mapped(*plan.owner):
        return
    target = plan.dest
    st = stat_in_root(sources[0].root_fd, sources[0].rel) if sources and dest_is_dir else None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        target = posixpath.join(plan.dest, posixpath.basename(sources[0].rel))
    raise unmapped_owner_error(*plan.owner, posixpath.normpath(target))


def _copy_source(src: Source, plan: CopyPlan, rootfs_fd: int, dest_is_dir: bool, data: _DataCopies) -> None:
    st = stat_in_root(src.root_fd, src.rel)
    if st is None:
        raise StrataError(f"stat {src.rel}: file does not exist")
    if stat.S_ISDIR(st.st_mode):
        _copy_dir_into(src, plan, rootfs_fd, plan.dest, data)
        return
    if plan.extract and _is_archive(src):
        _extract(src, plan, rootfs_fd)
        return
    target = posixpath.join(plan.dest, posixpath.basename(src.rel)) if dest_is_dir else plan.dest
    parent, name = posixpath.split(target.rstrip("/") or "/")
    dfd, _ = mkdir_all(rootfs_fd, parent, owner=plan.owner)
    sfd, sname = _parent_fd(src.root_fd, src.rel)
    try:
        _copy_entry(sfd, sname, dfd, name, plan, _Copier(plan, data, None))
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


def _copy_dir_into(src: Source, plan: CopyPlan, rootfs_fd: int, dest: str, data: _DataCopies) -> None:
    dfd, created = mkdir_all(rootfs_fd, dest, owner=plan.owner)
    sfd = open_in_root(src.root_fd, src.rel, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if created:
            os.fchown(dfd, *plan.owner)
        keep = _Filter(src.rules, "" if src.rel in ("", ".") else src.rel) if src.rules is not None else None
        _Copier(plan, data, keep).tree(sfd, dfd, fresh=created)
    finally:
        os.close(sfd)
        os.close(dfd)


class _Filter(_Record):
    """Which entries below a copied directory the context's .dockerignore leaves in."""

    __slots__ = ("prefix", "rules")
    _FIELDS = ("rules", "prefix")

    def __init__(self, rules: IgnoreRules, prefix: str) -> None:
        self.rules = rules
        self.prefix = prefix

    def below(self, name: str) -> _Filter:
        return _Filter(self.rules, f"{self.prefix}/{name}" if self.prefix else name)

    def skip(self, name: str, is_dir: bool) -> bool:
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


_BIG = 1 << 20  # a file of at least this many bytes has its data copied by a worker thread
_IN_FLIGHT = 8  # such copies at most at once (each holds two descriptors)


class _DataCopies:
    """Big files' data (and then their metadata) copied by a few threads while the walk goes on:
    ``sendfile`` lets go of the GIL. The file is created (and its directory changed) by the walk; a
    worker only writes the descriptors it is handed and closes them. ``finish`` waits for all and
    raises the first failure."""

    def __init__(self) -> None:
        self.pool: Any = None
        self.pending: list[Any] = []

    def submit(self, src: int, dst: int, st: os.stat_result, mode: int, owner: tuple[int, int]) -> None:
        if st.st_size < _BIG:
            _write_file(src, dst, st, mode, owner)
            return
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor  # only a copy with a big file loads it

            self.pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="copy")
        if len(self.pending) >= _IN_FLIGHT:
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(_write_file, src, dst, st, mode, owner))

    def finish(self) -> None:
        if self.pool is None:
            return
        try:
            for f in self.pending:
                f.result()
        finally:
            self.pool.shutdown(wait=True)
            self.pool = None


class _Copier:
    """The walk of one copied tree: one ``lstat`` per source entry (from ``scandir``), a destination
    looked at only when a name is already there (a directory this copy made is empty)."""

    def __init__(self, plan: CopyPlan, data: _DataCopies, keep: _Filter | None) -> None:
        self.plan, self.data, self.keep = plan, data, keep

    def below(self, name: str) -> _Copier:
        return self if self.keep is None else _Copier(self.plan, self.data, self.keep.below(name))

    def tree(self, sfd: int, dfd: int, *, fresh: bool) -> None:
        with os.scandir(sfd) as it:
            entries = sorted(((e.name, e.stat(follow_symlinks=False)) for e in it), key=lambda e: e[0])
        for name, st in entries:
            is_dir = stat.S_ISDIR(st.st_mode)
            if self.keep is not None and not _kept(sfd, name, is_dir, self.keep):
                continue
            implicit = is_dir and self.keep is not None and self.keep.only_walked(name)
            _copy_entry(sfd, name, dfd, name, self.plan, self.below(name), st, fresh, implicit=implicit)


def _copy_entry(
    sfd: int, sname: str, dfd: int, dname: str, plan: CopyPlan, copier: _Copier,
    st: os.stat_result | None = None, fresh: bool = False, *, implicit: bool = False,
) -> None:  # fmt: skip
    """One entry (``st``: its lstat, if known); ``fresh``: ``dfd`` is a directory this copy made;
    ``implicit``: an excluded directory walked only for what a ``!`` pattern sends below it (0755)."""
    if st is None:
        st = os.stat(sname, dir_fd=sfd, follow_symlinks=False)
    mode = plan.chmod if plan.chmod is not None else 0o755 if implicit else stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        _copy_subdir(sfd, sname, dfd, dname, st, mode, copier, fresh)
        return
    if stat.S_ISLNK(st.st_mode):
        _replacing(dfd, dname, fresh, lambda: os.symlink(os.readlink(sname, dir_fd=sfd), dname, dir_fd=dfd))
        os.chown(dname, *plan.owner, dir_fd=dfd, follow_symlinks=False)
        os.utime(dname, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
        return
    if not stat.S_ISREG(st.st_mode):
        return  # devices, fifos and sockets of a context are not copied
    src = os.open(sname, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sfd)
    try:
        dst = _replacing(dfd, dname, fresh, lambda: os.open(dname, _NEW, 0o600, dir_fd=dfd))
    except BaseException:
        os.close(src)
        raise
    copier.data.submit(src, dst, st, mode, plan.owner)


def _copy_subdir(
    sfd: int, sname: str, dfd: int, dname: str, st: os.stat_result, mode: int, copier: _Copier, fresh: bool
) -> None:
    made = _make_dir(dfd, dname, fresh)
    sub_s = os.open(sname, _DIR, dir_fd=sfd)
    try:
        sub_d = os.open(dname, _DIR, dir_fd=dfd)
    except BaseException:
        os.close(sub_s)
        raise
    try:
        os.fchown(sub_d, *copier.plan.owner)
        os.fchmod(sub_d, mode)
        copier.tree(sub_s, sub_d, fresh=made)
        os.utime(sub_d, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(sub_s)
        os.close(sub_d)


def _write_file(src: int, dst: int, st: os.stat_result, mode: int, owner: tuple[int, int]) -> None:
    """The data, owner, mode and times of a new file; both descriptors closed."""
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
        os.close(src)


def _replacing(dfd: int, name: str, fresh: bool, make: Callable[[], _T]) -> _T:
    """``make()`` a new entry ``name``; one already there (never in a directory this copy made) is
    first removed, unless it is a directory (Docker's error)."""
    if not fresh:
        _remove_non_dir(dfd, name)
        return make()
    try:
        return make()
    except FileExistsError:  # a fresh directory holds what this copy put there: a later source's same name
        _remove_non_dir(dfd, name)
        return make()


def _make_dir(dfd: int, name: str, fresh: bool) -> bool:
    """Directory ``name`` made unless there (a non-directory there is replaced); whether it was made."""
    try:
        os.mkdir(name, 0o700, dir_fd=dfd)
        return True
    except FileExistsError:
        pass
    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        return False
    _remove_non_dir(dfd, name)
    os.mkdir(name, 0o700, dir_fd=dfd)
    return True


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
