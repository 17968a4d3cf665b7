"""``COPY --from`` reads a stage's (or image's) files straight from its layer directories: the overlay a
step container's rootfs gets stacks them read-only (top layer first, whiteouts and opaque directories
honoured exactly as in a step container's rootfs, without the container's init layer, as Docker's
builder reads an image), no container record made. The kernel's overlay is built with the new mount
API from ``lowerdir+`` one layer at a time (no option string to outgrow a page); rootless (strata's
user namespace) with ``userxattr``, so the ``user.overlay.opaque`` marks and 0/0 whiteouts the rootless
unpack writes; where a rootless step container gets fuse-overlayfs (asked for, or the kernel refuses)
fuse-overlayfs without an upper dir. The mount is attached in a directory of the store's tmp named
after the build (``openat2``'s ``RESOLVE_IN_ROOT`` refuses ``..`` in a detached mount); the build's
watchdog (in the same namespaces) unmounts what a killed build left there. Where neither is to be had
(vfs; as root a kernel without ``lowerdir+``) ``layers_root`` yields None and the caller makes a
container."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["layers_root", "mount_prefix", "unmount"]

# the same numbers on every Linux architecture (the unified table from 5.1 on)
_MOVE_MOUNT, _FSOPEN, _FSCONFIG, _FSMOUNT = 429, 430, 431, 432
_AT_FDCWD, _MOVE_MOUNT_F_EMPTY_PATH, _MNT_DETACH = -100, 0x4, 0x2
_FSOPEN_CLOEXEC = 0x1
_FSCONFIG_SET_FLAG, _FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 0, 1, 6
_FSMOUNT_CLOEXEC = 0x1
_MOUNT_ATTR_RDONLY = 0x1
# a step container's overlay options (container.rootfs): the same view of the same layers; in a user
# namespace ``userxattr`` (opaque dirs as ``user.overlay.opaque``, as the rootless unpack writes them;
# the kernel refuses any redirect mode but ``nofollow`` with it)
_OPTIONS = (("index", "off"), ("redirect_dir", "off"), ("metacopy", "off"))
_USERNS_OPTIONS = (("index", "off"), ("redirect_dir", "nofollow"), ("metacopy", "off"))

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args: object) -> int:
    rc = int(_libc.syscall(ctypes.c_long(number), *args))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc


def _overlay_kind() -> str | None:
    """The overlay step containers get here: ``trusted.overlay.`` (the kernel's, as root),
    ``user.overlay.`` (the kernel's with ``userxattr``, in strata's user namespace), ``fuse`` (asked
    for: ``$STRATA_OVERLAY_MOUNT_PROGRAM``); None for vfs (a container then)."""
    if os.environ.get("STRATA_STORAGE_DRIVER", "") == "vfs":
        return None
    if os.environ.get("STRATA_OVERLAY_MOUNT_PROGRAM", "") == "fuse-overlayfs":
        return "fuse"
    from strata.container.rootfs import mount_xattr_prefix

    return mount_xattr_prefix()


def _configure(fs: int, lowers: list[str], userxattr: bool) -> None:
    for layer in reversed(lowers):  # lowerdir+ goes from the top layer down
        _syscall(_FSCONFIG, fs, _FSCONFIG_SET_STRING, b"lowerdir+", os.fsencode(layer), 0)
    if userxattr:  # no fallback: without it the kernel would not see the layers' opaque dirs
        _syscall(_FSCONFIG, fs, _FSCONFIG_SET_FLAG, b"userxattr", None, 0)
    for key, value in _USERNS_OPTIONS if userxattr else _OPTIONS:
        try:
            _syscall(_FSCONFIG, fs, _FSCONFIG_SET_STRING, key.encode(), value.encode(), 0)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
    _syscall(_FSCONFIG, fs, _FSCONFIG_CMD_CREATE, None, None, 0)


def _mount(lowers: list[str], userxattr: bool) -> int:
    """The read-only overlay of ``lowers`` (lowest first): an ``O_PATH`` descriptor of its root."""
    fs = _syscall(_FSOPEN, b"overlay", _FSOPEN_CLOEXEC)
    try:
        _configure(fs, lowers, userxattr)
        return _syscall(_FSMOUNT, fs, _FSMOUNT_CLOEXEC, _MOUNT_ATTR_RDONLY)
    finally:
        os.close(fs)


def mount_prefix(pid: int) -> str:
    """The name every layer-tree directory of build ``pid`` starts with in the store's tmp."""
    return f"build-from-{pid}-"


@contextmanager
def layers_root(layers: list[Path], tmp: Path) -> Iterator[str | None]:
    """The path of ``layers`` (lowest first) stacked as a step container would see them, read-only,
    or None where that needs a container; unmounted and removed afterwards."""
    kind = _overlay_kind() if layers else None
    if kind is None:
        yield None
        return
    import tempfile

    scratch = tempfile.mkdtemp(dir=tmp, prefix=mount_prefix(os.getpid()))
    target, empty = os.path.join(scratch, "root"), os.path.join(scratch, "empty")
    os.mkdir(target, 0o700)
    os.mkdir(empty, 0o700)
    lowers = [os.fspath(p) for p in layers]
    if len(lowers) == 1:  # an overlay needs two lowers: an empty one below
        lowers.insert(0, empty)
    if not _attach(lowers, target, kind):
        _remove(scratch, mounted=False)
        yield None
        return
    try:
        yield target
    finally:
        _remove(scratch, mounted=True)


def _attach(lowers: list[str], target: str, kind: str) -> bool:
    """Mount the read-only stack at ``target`` as a step container's rootfs would be mounted: the
    kernel's overlay, else (rootless, where the kernel refuses it) fuse-overlayfs; False where
    neither is to be had (no new mount API, no ``lowerdir+`` as root: a container then)."""
    if kind != "fuse":
        try:
            _attach_kernel(lowers, target, userxattr=kind == "user.overlay.")
            return True
        except OSError:
            if kind != "user.overlay.":
                return False
    try:
        _attach_fuse(lowers, target)
    except OSError:
        return False
    return True


def _attach_kernel(lowers: list[str], target: str, *, userxattr: bool) -> None:
    mnt = _mount(lowers, userxattr)
    try:
        _syscall(_MOVE_MOUNT, mnt, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        os.close(mnt)


def _attach_fuse(lowers: list[str], target: str) -> None:
    """fuse-overlayfs over ``lowers`` without an upper dir (read-only): the program and layers a
    rootless step container's rootfs gets there, without its init layer."""
    import shutil
    import subprocess

    if shutil.which("fuse-overlayfs") is None:
        raise OSError(errno.ENOENT, "fuse-overlayfs not found")
    done = subprocess.run(["fuse-overlayfs", "-o", "lowerdir=" + ":".join(reversed(lowers)), target],
                          capture_output=True, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    if done.returncode != 0:
        raise OSError(errno.EPERM, f"fuse-overlayfs on {target}: exit status {done.returncode}")


def _remove(scratch: str, *, mounted: bool) -> None:
    if mounted:
        unmount(os.path.join(scratch, "root"))
    for name in ("root", "empty"):
        os.rmdir(os.path.join(scratch, name))
    os.rmdir(scratch)


def unmount(target: str) -> None:
    """Lazily unmount ``target`` (nothing there: nothing to do)."""
    if _libc.umount2(os.fsencode(target), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, os.strerror(err), target)
