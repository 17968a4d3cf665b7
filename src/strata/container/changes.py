"""A container's changes: ``diff`` (A/C/D) and the layer tar ``commit`` stores.

overlay: the upper dir *is* the change set (whiteouts as char devices 0/0, opaque dirs by xattr);
whether an upper entry is an addition or a change depends on the lower layers.
vfs: the full copy is compared with the image layers' merged view (type, mode, owner, size, mtime,
link target); the differences are staged as an overlay-style upper dir of hard links, so both
drivers produce their layer tar through the same writer.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from strata.archive import write_tar_from_dir
from strata.archive.hashing import LayerInfo
from strata.container.rootfs import INIT_FILES, OPAQUE_XATTR, Rootfs, is_whiteout

__all__ = ["changes", "rw_size", "staged_upper", "write_layer_tar"]


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _in_lowers(lowers_top_first: list[Path], rel: str) -> bool:
    """Whether ``/rel`` exists in the merged view of the lower layers (overlay lookup rules)."""
    parts = rel.split("/")
    for layer in lowers_top_first:
        p = os.path.join(layer, rel)
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if st is not None:
            return not is_whiteout(st)
        # an opaque ancestor (or a non-directory ancestor) in this layer hides everything below
        for i in range(len(parts) - 1, 0, -1):
            anc = os.path.join(layer, *parts[:i])
            try:
                ast = os.lstat(anc)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if not stat.S_ISDIR(ast.st_mode) or _opaque(anc):
                return False
            break
    return False


def _overlay_changes(rootfs: Rootfs) -> list[tuple[str, str]]:
    lowers = list(reversed(rootfs.lowers()))
    out: list[tuple[str, str]] = []
    upper = str(rootfs.upper)
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, upper)
            st = os.lstat(full)
            if is_whiteout(st):
                out.append(("D", "/" + rel))
            elif _in_lowers(lowers, rel):
                out.append(("C", "/" + rel))
            else:
                out.append(("A", "/" + rel))
    out.sort(key=lambda item: item[1])
    return out


def _signature(st: os.stat_result, path: str) -> tuple[object, ...]:
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
    size = st.st_size if not stat.S_ISDIR(st.st_mode) else 0
    return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size,
            st.st_mtime_ns // 1000, st.st_rdev, link)


def _merged_lowers(rootfs: Rootfs) -> dict[str, tuple[object, ...]]:
    """rel path -> signature of the entry the lower layers show (whiteouts and opaque dirs applied)."""
    view: dict[str, tuple[object, ...]] = {}
    for layer in rootfs.lowers():
        base = str(layer)
        for dirpath, dirnames, filenames in os.walk(base):
            rel_dir = os.path.relpath(dirpath, base)
            if rel_dir != "." and _opaque(dirpath):
                prefix = rel_dir + "/"
                for key in [k for k in view if k.startswith(prefix)]:
                    del view[key]
            for name in [*dirnames, *filenames]:
                full = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(rel_dir, name))
                st = os.lstat(full)
                if is_whiteout(st):
                    view.pop(rel, None)
                    prefix = rel + "/"
                    for key in [k for k in view if k.startswith(prefix)]:
                        del view[key]
                    continue
                view[rel] = _signature(st, full)
    return view


def _vfs_changes(rootfs: Rootfs) -> list[tuple[str, str]]:
    base = _merged_lowers(rootfs)
    top = str(rootfs.path)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, top)
            seen.add(rel)
            st = os.lstat(full)
            if rel not in base:
                out.append(("A", "/" + rel))
            elif rel in INIT_FILES:
                continue
            elif base[rel] != _signature(st, full):
                out.append(("C", "/" + rel))
    for rel in base:
        if rel in seen:
            continue
        parent = os.path.dirname(rel)
        if parent and parent not in seen:
            continue  # only the topmost deleted entry is reported
        out.append(("D", "/" + rel))
    out.sort(key=lambda item: item[1])
    return out


def changes(cdir: Path, driver: str) -> list[tuple[str, str]]:
    """Docker's ``diff``: (kind, path) with kind A (added), C (changed) or D (deleted), by path."""
    rootfs = Rootfs(cdir, driver)
    return _overlay_changes(rootfs) if driver == "overlay" else _vfs_changes(rootfs)


def _sizes(paths: list[str]) -> int:
    """Docker's directory.Size: bytes of the non-directory entries, each hard-linked inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in paths:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) or st.st_size == 0 or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        total += st.st_size
    return total


def rw_size(cdir: Path, driver: str) -> int:
    """``SizeRw``: what the container's writable layer holds (overlay: its upper dir; vfs: the added
    and changed entries of its full copy)."""
    rootfs = Rootfs(cdir, driver)
    if driver == "overlay":
        paths: list[str] = []
        for dirpath, _, filenames in os.walk(rootfs.upper):
            paths.extend(os.path.join(dirpath, name) for name in filenames)
        return _sizes(paths)
    if not rootfs.path.is_dir():
        return 0
    top = str(rootfs.path)
    return _sizes([os.path.join(top, path.lstrip("/")) for kind, path in _vfs_changes(rootfs) if kind != "D"])


def _stage_entry(src: str, dst: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        os.makedirs(dst, exist_ok=True)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        os.lchown(dst, st.st_uid, st.st_gid)
    else:
        os.link(src, dst, follow_symlinks=False)


@contextmanager
def staged_upper(cdir: Path, driver: str, scratch: Path) -> Iterator[Path]:
    """An overlay-style upper dir holding the container's changes (the upper dir itself for overlay)."""
    rootfs = Rootfs(cdir, driver)
    if driver == "overlay":
        yield rootfs.upper
        return
    stage = scratch / "upper"
    stage.mkdir(parents=True)
    try:
        top = str(rootfs.path)
        dirs: list[tuple[str, os.stat_result]] = []
        for kind, path in _vfs_changes(rootfs):
            rel = path.lstrip("/")
            dst = os.path.join(stage, rel)
            parent = os.path.dirname(rel)
            if parent:
                os.makedirs(os.path.join(stage, parent), exist_ok=True)
                dirs.append((parent, os.lstat(os.path.join(top, parent))))
            if kind == "D":
                os.mknod(dst, stat.S_IFCHR | 0o000, 0)
                continue
            st = os.lstat(os.path.join(top, rel))
            _stage_entry(os.path.join(top, rel), dst, st)
            if stat.S_ISDIR(st.st_mode):
                dirs.append((rel, st))
        for rel, st in sorted(dirs, key=lambda d: d[0], reverse=True):
            os.utime(os.path.join(stage, rel), ns=(st.st_atime_ns, st.st_mtime_ns))
            os.chmod(os.path.join(stage, rel), stat.S_IMODE(st.st_mode))
            os.lchown(os.path.join(stage, rel), st.st_uid, st.st_gid)
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_layer_tar(upper: Path, out: BinaryIO) -> LayerInfo:
    """The OCI layer tar of an overlay-style upper dir (whiteouts become ``.wh.`` entries)."""
    return write_tar_from_dir(upper, out, from_overlay_upper=True)
