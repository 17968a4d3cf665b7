"""A container's changes: ``diff`` (A/C/D) and the layer tar ``commit`` stores.

overlay: the upper dir *is* the change set (whiteouts as char devices 0/0, opaque dirs by xattr);
whether an upper entry is an addition or a change depends on the lower layers; what the lower layers
hold inside an opaque directory (removed and made again) and is not in the upper dir is deleted.
vfs: the full copy is compared with the image layers' merged view as Docker's vfs driver compares
them (type, mode, owner, device; size, mtime and link target of non-directories; a directory with
changes inside counts as changed; nothing is reported below an entry that is no longer a directory);
the differences are staged as an overlay-style upper dir of hard links, so both drivers produce their
layer tar through the same writer.

The container's tree is hostile (a running container can swap a directory for a symlink at any
moment): it is only ever read through directory descriptors opened with ``O_NOFOLLOW`` from the
container's root (``archive.dirs.walk_tree``), hard links are made with ``linkat`` relative to those
descriptors, and the staging tree is built below its own descriptor, so nothing is read or written
outside the container's tree and the staging directory.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from strata.archive import write_tar_from_dir
from strata.archive.dirs import DirWalker, Entry, list_dir, walk_tree
from strata.archive.hashing import LayerInfo
from strata.container.rootfs import FUSE_OPAQUE_NAMES, INIT_FILES, Rootfs, is_opaque, is_whiteout

TYPE_CHECKING = False  # not typing's: importing typing costs a cold build's start-up
if TYPE_CHECKING:
    import tarfile
    from typing import BinaryIO

__all__ = ["changes", "rw_size", "staged_upper", "write_layer_tar"]

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
Parts = tuple[str, ...]
Change = tuple[str, Parts, Entry | None]  # kind (A, C, D), path components, the entry (not for D)


@contextmanager
def _dir_fd(path: Path) -> Iterator[int]:
    fd = os.open(path, _OPEN_DIR)
    try:
        yield fd
    finally:
        os.close(fd)


def _opaque(fd: int) -> bool:
    return is_opaque(fd)  # trusted.overlay.opaque, or user.overlay.opaque in a rootless store


class _Fds:
    """Directory descriptors opened (never following a symlink) and closed together; a directory
    that does not exist (a layer removed meanwhile) opens as None."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    def open(self, path: Path) -> int | None:
        try:
            fd = os.open(path, _OPEN_DIR)
        except (FileNotFoundError, NotADirectoryError):
            return None
        self._fds.append(fd)
        return fd

    def __enter__(self) -> _Fds:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds:
            os.close(fd)


class _LowerDirs:
    """The lower layers' directories (top layer first) at one path of the merged view, resolved
    component by component without following symlinks; kept along the current path only."""

    def __init__(self, roots_top_first: list[int]) -> None:
        self._cache: dict[Parts, list[int]] = {(): roots_top_first}

    def exists(self, parts: Parts) -> bool:
        """Whether ``parts`` exists in the merged view (whiteouts, opaque dirs and non-directories
        hide what the layers below hold)."""
        for fd in self._dirs(parts[:-1]):
            try:
                st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                continue
            return not is_whiteout(st)
        return False

    def _dirs(self, parts: Parts) -> list[int]:
        found = self._cache.get(parts)
        if found is not None:
            return found
        parent = self._dirs(parts[:-1])
        for key in [k for k in self._cache if k and k != parts[: len(k)]]:
            self._close(self._cache.pop(key))
        found = []
        for fd in parent:
            try:
                st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if not stat.S_ISDIR(st.st_mode):
                break  # a whiteout or a non-directory hides the layers below
            try:
                child = os.open(parts[-1], _OPEN_DIR, dir_fd=fd)
            except OSError:
                break
            found.append(child)
            if _opaque(child):
                break
        self._cache[parts] = found
        return found

    def children(self, parts: Parts) -> set[str]:
        """The names the merged lower view shows in the directory ``parts`` (whiteouts hide names)."""
        seen: set[str] = set()
        shown: set[str] = set()
        for fd in self._dirs(parts):
            for name in list_dir(fd):
                if name in seen:
                    continue
                seen.add(name)
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not is_whiteout(st):
                    shown.add(name)
        return shown

    @staticmethod
    def _close(fds: list[int]) -> None:
        for fd in fds:
            os.close(fd)

    def close(self) -> None:
        for key, fds in self._cache.items():
            if key:
                self._close(fds)
        self._cache = {}


def _overlay_changes(rootfs: Rootfs) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    with _Fds() as fds:
        upper = fds.open(rootfs.upper)
        layers = [fds.open(p) for p in reversed(rootfs.lowers())]
        lowers = _LowerDirs([fd for fd in layers if fd is not None])
        try:
            if upper is not None:
                out = list(_upper_changes(upper, lowers))
        finally:
            lowers.close()
    out.sort(key=lambda item: item[1])
    return out


def _upper_changes(upper: int, lowers: _LowerDirs) -> Iterator[tuple[str, str]]:
    """The upper dir's entries as changes; a directory that hides what the layers below hold there
    (opaque: removed and made again, or inside such a directory) also lists those entries as deleted."""
    hiding: set[Parts] = set()
    for e in walk_tree(upper):
        if e.name in FUSE_OPAQUE_NAMES:
            continue  # fuse-overlayfs's own markers of an opaque directory (which its xattr says)
        if is_whiteout(e.st):
            yield "D", "/" + e.rel
            continue
        yield ("C" if lowers.exists(e.parts) else "A"), "/" + e.rel
        if e.fd is not None and (e.parts[:-1] in hiding or _opaque(e.fd)):
            hiding.add(e.parts)
            for name in sorted(lowers.children(e.parts) - set(e.names)):
                yield "D", "/" + "/".join((*e.parts, name))


def _readlink(e: Entry) -> str:
    if not stat.S_ISLNK(e.st.st_mode):
        return ""
    try:
        return os.readlink(e.name, dir_fd=e.parent_fd)
    except OSError as err:  # no longer a symlink: a running container changed it meanwhile
        if err.errno not in (errno.ENOENT, errno.EINVAL):
            raise
        return ""


def _signature(st: os.stat_result, link: str) -> tuple[object, ...]:
    """What Docker's vfs diff compares (``statDifferent``): a directory's size and mtime do not count."""
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFDIR:
        return (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_rdev)
    return (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_rdev, st.st_size,
            st.st_mtime_ns // 1000, link)


class _MergedView:
    """rel path -> signature of what the lower layers show (whiteouts, opaque dirs applied), with
    each directory's children."""

    def __init__(self) -> None:
        self.sigs: dict[str, tuple[object, ...]] = {}
        self.kids: dict[str, set[str]] = {}

    def add_layer(self, root_fd: int) -> None:
        for e in walk_tree(root_fd):
            rel = e.rel
            if is_whiteout(e.st):
                self._drop(rel)
                continue
            if e.fd is None or _opaque(e.fd):
                self._drop_children(rel)
            self.sigs[rel] = _signature(e.st, _readlink(e))
            self.kids.setdefault("/".join(e.parts[:-1]), set()).add(e.name)

    def _drop(self, rel: str) -> None:
        if self.sigs.pop(rel, None) is not None:
            parent, _, name = rel.rpartition("/")
            self.kids.get(parent, set()).discard(name)
        self._drop_children(rel)

    def _drop_children(self, rel: str) -> None:
        for name in self.kids.pop(rel, set()):
            child = f"{rel}/{name}"
            self.sigs.pop(child, None)
            self._drop_children(child)


def _merged_lowers(rootfs: Rootfs) -> _MergedView:
    view = _MergedView()
    for layer in rootfs.lowers():
        with _Fds() as fds:
            fd = fds.open(layer)
            if fd is not None:
                view.add_layer(fd)
    return view


def _vfs_scan(root_fd: int, base: _MergedView, dirs: dict[Parts, os.stat_result] | None = None) -> Iterator[Change]:
    """The container's changes, in walk order, each while its entry's descriptors are open; a
    directory's deleted children follow the directory. ``dirs`` gets every directory's stat."""
    names = list_dir(root_fd)  # one listing for both: what was deleted and what is walked
    yield from _deleted(base, (), set(names))
    for e in walk_tree(root_fd, names):
        if dirs is not None and e.fd is not None:
            dirs[e.parts] = e.st
        sig = base.sigs.get(e.rel)
        if sig is None:
            yield "A", e.parts, e
        elif e.rel not in INIT_FILES and sig != _signature(e.st, _readlink(e)):
            yield "C", e.parts, e
        if e.fd is not None:
            yield from _deleted(base, e.parts, set(e.names))


def _deleted(base: _MergedView, parts: Parts, present: set[str]) -> Iterator[Change]:
    for name in sorted(base.kids.get("/".join(parts), set()) - present):
        yield "D", (*parts, name), None


def _vfs_changes(rootfs: Rootfs) -> list[tuple[str, str]]:
    base = _merged_lowers(rootfs)
    paths: dict[str, str] = {}
    with _dir_fd(rootfs.path) as root_fd:
        for kind, parts, _ in _vfs_scan(root_fd, base):
            paths["/" + "/".join(parts)] = kind
    for path in list(paths):  # a directory with changes inside is changed (Docker inserts it)
        parent = os.path.dirname(path)
        while parent != "/" and parent not in paths:
            paths[parent] = "C"
            parent = os.path.dirname(parent)
    return sorted(((kind, path) for path, kind in paths.items()), key=lambda item: item[1])


def changes(cdir: Path, driver: str) -> list[tuple[str, str]]:
    """Docker's ``diff``: (kind, path) with kind A (added), C (changed) or D (deleted), by path."""
    rootfs = Rootfs(cdir, driver)
    return _overlay_changes(rootfs) if driver == "overlay" else _vfs_changes(rootfs)


class _Sizes:
    """Docker's directory.Size: bytes of the non-directory entries, each hard-linked inode once."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()
        self.total = 0

    def add(self, st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode) or st.st_size == 0 or (st.st_dev, st.st_ino) in self.seen:
            return
        self.seen.add((st.st_dev, st.st_ino))
        self.total += st.st_size


def rw_size(cdir: Path, driver: str) -> int:
    """``SizeRw``: what the container's writable layer holds (overlay: its upper dir; vfs: the added
    and changed entries of its full copy)."""
    rootfs = Rootfs(cdir, driver)
    sizes = _Sizes()
    try:
        with _dir_fd(rootfs.upper if driver == "overlay" else rootfs.path) as root_fd:
            if driver == "overlay":
                for e in walk_tree(root_fd):
                    sizes.add(e.st)
            else:
                for _, _, entry in _vfs_scan(root_fd, _merged_lowers(rootfs)):
                    if entry is not None:
                        sizes.add(entry.st)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return sizes.total


def _stage_vfs(root_fd: int, base: _MergedView, stage: DirWalker) -> None:
    """Stage the changes below ``root_fd`` into ``stage``: hard links of the changed entries (made
    relative to the walk's descriptors), directories, whiteouts; directories then get the container's
    mode, owner and times."""
    dir_stats: dict[Parts, os.stat_result] = {}
    for kind, parts, e in _vfs_scan(root_fd, base, dir_stats):
        parent = stage.open(parts[:-1], create=True, member="/".join(parts))
        assert parent is not None
        if kind == "D":
            os.mknod(parts[-1], stat.S_IFCHR | 0o000, 0, dir_fd=parent)
        elif e is not None and e.fd is not None:
            stage.open(parts, create=True, member="/".join(parts))
        elif e is not None:
            _link(e, parent)
    for parts in sorted(stage.created, key=len, reverse=True):
        _dir_meta(stage, parts, dir_stats[parts])


def _link(e: Entry, dst_fd: int) -> None:
    try:
        os.link(e.name, e.name, src_dir_fd=e.parent_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
    except OSError as err:  # gone, or now a directory: a running container changed it meanwhile
        if err.errno not in (errno.ENOENT, errno.EPERM):
            raise


def _dir_meta(stage: DirWalker, parts: Parts, st: os.stat_result) -> None:
    fd = stage.open(parts, create=False, member="/".join(parts))
    assert fd is not None
    os.chown(fd, st.st_uid, st.st_gid)
    os.chmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


@contextmanager
def staged_upper(cdir: Path, driver: str, scratch: Path) -> Iterator[Path]:
    """An overlay-style upper dir holding the container's changes (the upper dir itself for overlay)."""
    rootfs = Rootfs(cdir, driver)
    if driver == "overlay":
        if rootfs.fuse_mark.exists():
            _drop_fuse_marks(rootfs)
        yield rootfs.upper
        return
    path = scratch / "upper"
    path.mkdir(mode=0o700, parents=True)
    try:
        base = _merged_lowers(rootfs)
        with _dir_fd(path) as stage_fd, _dir_fd(rootfs.path) as root_fd:
            stage = DirWalker(stage_fd, dir_mode=0o700)
            try:
                _stage_vfs(root_fd, base, stage)
            finally:
                stage.close()
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _drop_fuse_marks(rootfs: Rootfs) -> None:
    """fuse-overlayfs's opaque marks on directories the kernel's overlay would not have marked (nothing
    below there) taken away: the layer is the kernel's (``rootless.fusemarks``)."""
    from strata.rootless.fusemarks import drop_new_dir_marks

    with _Fds() as fds:
        upper = fds.open(rootfs.upper)
        lowers = _LowerDirs([fd for fd in (fds.open(p) for p in reversed(rootfs.lowers())) if fd is not None])
        try:
            if upper is not None:
                drop_new_dir_marks(upper, lowers.exists)
        finally:
            lowers.close()


def write_layer_tar(
    upper: Path, out: BinaryIO, on_member: Callable[[tarfile.TarInfo], None] | None = None, *, writeback: bool = False
) -> LayerInfo:
    """The OCI layer tar of an overlay-style upper dir (whiteouts become ``.wh.`` entries) into ``out``,
    a new file of strata's own (large files are copied into it in the kernel: ``archive.tarsink``);
    ``on_member(info)`` sees each member before it is written. ``writeback``: the writeback of the tar
    and of the upper dir's large files starts at once (a sync of the filesystem follows)."""
    return write_tar_from_dir(upper, out, from_overlay_upper=True, on_member=on_member, own_file=True,
                              writeback=writeback)  # fmt: skip
