"""A step's overlay upper directory adopted as its unpacked layer (``layers/<diff_id>``), as BuildKit
keeps a step's snapshot: the next step mounts it as a lower instead of unpacking the tar just stored.

The adopted tree must be exactly what unpacking the stored tar gives (``engine._unpack``), so it is
first made so, entry by entry, from what the tar writer recorded of it: mtimes cut to whole seconds
(atime = mtime, as the unpack sets them), only the xattrs the tar keeps (``user.*`` but overlay's,
``security.capability``; none on symlinks and devices), an opaque directory marked by the one
xattr the unpack writes, whiteouts as fresh 0/0 devices owned as the tar says (the kernel shares one
whiteout inode), sockets (never in a tar) removed, the root as a fresh unpack makes it. A name the
tar would read back differently (``.wh.*``) and every case whose format is not provably the same
(vfs, fuse-overlayfs, not root), inode flags the step set (``chattr``) and xattr names the
PAX record cannot carry (``=``) refuse the adoption: the layer is unpacked as before.

Rootless (in a user namespace) the kernel's overlay is mounted with ``userxattr``: its upper dir marks
opaque directories ``user.overlay.opaque`` and makes 0/0 whiteouts, as the rootless unpack writes
them, and the step's processes share strata's user namespace (owners and ``security.capability``
read and written in the same one). Such an upper dir is adopted too, unless fuse-overlayfs ever
mounted that rootfs (``Rootfs.fuse_mark``, made before any fuse mount; ``--userns=keep-id``'s id
mapping too): fuse-overlayfs has its own markers and may keep owners in xattrs.

Known limit: the step's overlay is unmounted in strata's mount namespace; a process that copied that
mount into a private namespace of its own while the step ran (``unshare -m``) keeps it alive, with
this upper dir as its upper, after the adoption. Nothing strata starts does that (runc detaches the
old root of its containers)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from strata.archive.names import WHITEOUT_PREFIX

TYPE_CHECKING = False  # not typing's: importing typing costs a cold build's start-up
if TYPE_CHECKING:
    from strata.digest import Digest
    from strata.engine import Engine

__all__ = ["adopt_upper"]

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_KEPT = ("user.", "security.capability")
_NOT_KEPT = ("user.overlay.", "user.fuseoverlayfs.")
_OPAQUE = tuple(f"{p}opaque" for p in ("trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."))
_FS_IOC_GETFLAGS = 0x80086601
# inode flags a fresh unpack may have too (ext4's layout bits); any other (chattr +A, +d, +S, +C, …,
# which a step's root may set through overlayfs) is not in the tar: such an upper dir is not adopted
_LAYOUT_FLAGS = 0x80000 | 0x1000 | 0x10000000 | 0x40000  # EXTENTS, INDEX, INLINE_DATA, HUGE_FILE


class _Refused(Exception):
    """The upper dir cannot be made exactly what the tar unpacks to."""


def adopt_upper(engine: Engine, cdir: Path, driver: str, diff_id: Digest) -> Path | None:
    """The layer's unpacked directory the container's upper dir became, after a sync of the store's
    filesystem (called with the store's writing lock held, the layer's tar written, the container
    stopped). None: nothing adopted (the upper dir is left to the container's removal, perhaps
    normalized in part: it is garbage). A layer directory is content-addressed and complete: it may be
    there before its blob and image are recorded (a crash in between leaves it to the garbage collector)."""
    prefix = _unpack_prefix(cdir, driver)
    if prefix is None or engine.store.layer_dir(diff_id).is_dir():
        return None
    from strata.container.rootfs import Rootfs, umount

    rootfs = Rootfs(cdir, driver)
    try:
        umount(str(rootfs.path))  # never a lower of the next step while an upper of a mount (no lazy one)
        if engine.adopt_layer_dir(diff_id, rootfs.upper, lambda upper: _normalize(upper, prefix), prefix):
            return engine.store.layer_dir(diff_id)
    except OSError:  # busy, another filesystem than the store's, an xattr not removable…: the layer
        pass  # is unpacked from its stored tar as before
    return None


def _unpack_prefix(cdir: Path, driver: str) -> str | None:
    """The overlay xattr namespace the unpack writes (``trusted.overlay.``, ``user.overlay.`` in a user
    namespace) when the step's upper dir provably is in the same format: the kernel's overlay (as root
    outside a user namespace, or with ``userxattr`` inside one, as root there), never fuse-overlayfs
    or vfs staging; else None."""
    from strata.container.rootfs import Rootfs, mount_xattr_prefix

    if driver != "overlay" or os.geteuid() != 0:
        return None
    if os.environ.get("STRATA_OVERLAY_MOUNT_PROGRAM", ""):  # fuse-overlayfs asked for (container.rootfs)
        return None
    if (cdir / "fuse-idmapping").exists() or Rootfs(cdir, driver).fuse_mark.exists():
        return None
    return mount_xattr_prefix()  # the engine checks that its unpack writes the same


def _normalize(upper: Path, prefix: str) -> bool:
    """The upper dir made exactly what the stored tar unpacks to (opaque marks in ``prefix``'s
    namespace, as the unpack writes them); False if it cannot be."""
    fd = os.open(upper, _OPEN_DIR)
    try:
        try:
            _check_flags(fd)
            _walk(fd, prefix + "opaque")
        except _Refused:
            return False
        for key in _xattrs(fd):
            os.removexattr(fd, key)  # the unpack's root has none (a layer tar has no root entry)
        os.fchown(fd, os.geteuid(), os.getegid())
        os.fchmod(fd, 0o777 & ~_umask())  # os.makedirs' mode, as the unpack's root gets
        return True
    finally:
        os.close(fd)


def _umask() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _walk(dir_fd: int, mark: str) -> None:
    for name in os.listdir(dir_fd):
        if name.startswith(WHITEOUT_PREFIX):
            raise _Refused(name)  # the tar's reader takes it for a whiteout (fuse markers too)
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            _directory(dir_fd, name, st, mark)
        elif kind == stat.S_IFSOCK:
            os.unlink(name, dir_fd=dir_fd)  # the tar writer skips sockets
        elif kind == stat.S_IFCHR and st.st_rdev == 0:
            os.unlink(name, dir_fd=dir_fd)  # a whiteout, made again as the unpack makes it
            os.mknod(name, stat.S_IFCHR | 0o000, 0, dir_fd=dir_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)
        elif kind == stat.S_IFREG:
            _file(dir_fd, name, st)
        else:  # symlinks, devices, fifos: the tar records no xattrs for them
            path = f"/proc/self/fd/{dir_fd}/{name}"
            for key in _xattrs(path):
                os.removexattr(path, key, follow_symlinks=False)
            _set_mtime(st, name, dir_fd)


def _directory(parent: int, name: str, st: os.stat_result, mark: str) -> None:
    fd = os.open(name, _OPEN_DIR, dir_fd=parent)
    try:
        _check_flags(fd)
        opaque = any(_get(fd, key) == b"y" for key in _OPAQUE)
        _walk(fd, mark)
        _keep_xattrs(fd)
        if opaque:
            os.setxattr(fd, mark, b"y")
        _set_mtime(st, fd)  # after its children (a socket removed, a whiteout made again changed it)
    finally:
        os.close(fd)


def _file(parent: int, name: str, st: os.stat_result) -> None:
    fd = os.open(name, _OPEN_FILE, dir_fd=parent)
    try:
        _check_flags(fd)
        _keep_xattrs(fd)
        _set_mtime(st, fd)
    finally:
        os.close(fd)


def _check_flags(fd: int) -> None:
    """Refuse an inode with flags the tar does not carry (``chattr``: the unpack would not set them)."""
    import fcntl

    buf = bytearray(8)
    try:
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf)
    except OSError as e:
        if e.errno in (errno.ENOTTY, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL):
            return  # a filesystem without inode flags
        raise
    if int.from_bytes(buf[:4], "little") & ~_LAYOUT_FLAGS:
        raise _Refused("inode flags")


def _keep_xattrs(fd: int) -> None:
    for key in _xattrs(fd):
        if not key.startswith(_KEPT) or key.startswith(_NOT_KEPT):
            os.removexattr(fd, key)
        elif "=" in key:  # the tar's PAX record splits at the first "=": it reads back another name
            raise _Refused(key)


def _xattrs(target: int | str) -> list[str]:
    try:
        return os.listxattr(target, follow_symlinks=False) if isinstance(target, str) else os.listxattr(target)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return []
        raise


def _get(fd: int, key: str) -> bytes | None:
    try:
        return os.getxattr(fd, key)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return None
        raise


def _set_mtime(st: os.stat_result, target: int | str, dir_fd: int | None = None) -> None:
    """atime and mtime both the whole seconds of the mtime, as the tar carries and the unpack sets."""
    ns = round(float(int(st.st_mtime)) * 1_000_000_000)
    if isinstance(target, int):
        os.utime(target, ns=(ns, ns))
    else:
        os.utime(target, ns=(ns, ns), dir_fd=dir_fd, follow_symlinks=False)
