"""A container's root filesystem: an overlayfs mount of the image layers, or a full copy (``vfs``).

Layout under ``<root>/containers/<id>/``::

    init/      Docker's "init layer": empty mount points (/etc/hosts, /proc, /dev/pts, ...) kept
               out of the container's own changes
    upper/     overlay upper dir = the container's changes (overlay driver)
    work/      overlay work dir
    merged/    mount point of the overlay (overlay driver)
    rootfs/    the full copy (vfs driver)
    lowers     the image's layer dirs, lowest first, one path per line

Layer dirs come from ``engine.layer_dirs``: whiteouts as char devices 0/0, opaque dirs as the
``trusted.overlay.opaque`` xattr (``user.overlay.opaque`` in a rootless store, mounted with
``userxattr``). The vfs driver applies them while copying.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from strata.atomicfile import write_bytes_atomic
from strata.errors import StrataError, os_error_text
from strata.rootless.mode import OPAQUE_XATTRS, in_user_namespace

__all__ = [
    "DRIVERS",
    "FUSE_OPAQUE_NAMES",
    "INIT_DIRS",
    "INIT_FILES",
    "Rootfs",
    "is_opaque",
    "is_whiteout",
    "mount",
    "mount_layers",
    "mount_xattr_prefix",
    "storage_driver",
    "umount",
]

DRIVERS = ("overlay", "vfs")
OPAQUE_XATTR = "trusted.overlay.opaque"
# what fuse-overlayfs also leaves in an opaque directory of its upper dir, next to the xattr
FUSE_OPAQUE_NAMES = frozenset({".wh..wh..opq", ".wh..opq"})
_OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.", "user.fuseoverlayfs.")
# kernel overlay options tried in order: whole files in the upper dir (no redirects, no metacopy);
# in a user namespace trusted.* xattrs are out of reach, so ``userxattr`` (user.overlay.*)
_ROOT_OPTIONS = (",index=off,redirect_dir=off,metacopy=off", ",redirect_dir=off", "")
_USERNS_OPTIONS = (",userxattr,index=off,redirect_dir=nofollow,metacopy=off", ",userxattr")
INIT_DIRS = ("dev", "dev/pts", "dev/shm", "proc", "sys", "etc")
INIT_FILES = (".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "dev/console")
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)  # libc is loaded already: no ldconfig run to find it


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    rc = _libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags), data.encode())
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err).lower()}")


def umount(target: str, *, lazy: bool = False) -> None:
    rc = _libc.umount2(target.encode(), MNT_DETACH if lazy else 0)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):  # not mounted
            return
        raise OSError(err, f"umount {target}: {os.strerror(err).lower()}")


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str | int) -> bool:
    """Whether a directory (path or fd) is marked opaque, in any overlay implementation's xattr
    (``trusted.overlay.`` as root, ``user.overlay.`` with ``userxattr``, fuse-overlayfs's own)."""
    for name in OPAQUE_XATTRS:
        try:
            value = os.getxattr(path, name) if isinstance(path, int) else os.getxattr(path, name, follow_symlinks=False)
            if value in (b"y", b"x"):
                return True
        except OSError:
            continue
    return False


def _overlay_options(lowers: list[Path], upper: Path, work: Path, extra: str) -> tuple[str, str | None]:
    """Mount options and the directory to chdir to when absolute paths would exceed a page."""
    top_first = [str(p) for p in reversed(lowers)]
    opts = f"lowerdir={':'.join(top_first)},upperdir={upper},workdir={work}{extra}"
    if len(opts) < 4000:
        return opts, None
    base = os.path.commonpath([*top_first, str(upper), str(work)])
    rel = [os.path.relpath(p, base) for p in top_first]
    opts = (
        f"lowerdir={':'.join(rel)},upperdir={os.path.relpath(upper, base)},"
        f"workdir={os.path.relpath(work, base)}{extra}"
    )
    return opts, base


def mount_xattr_prefix() -> str:
    """The xattr namespace of the kernel overlays ``mount_overlay`` makes here: ``user.overlay.``
    (``userxattr``) in a user namespace, else ``trusted.overlay.``."""
    return "user.overlay." if in_user_namespace() else "trusted.overlay."


def mount_overlay(lowers: list[Path], upper: Path, work: Path, target: Path, *, volatile: bool = False) -> None:
    """Mount lowers (lowest first) + upper at target; redirect_dir and metacopy off so the upper
    dir always holds whole files (what a layer tar needs). Options the kernel refuses (EINVAL, or
    EPERM for what needs privileges) give way to the next set. ``volatile``: no sync at unmount and
    no fsync through the mount, first (a kernel without it: the sets without it)."""
    last: OSError | None = None
    sets = _USERNS_OPTIONS if in_user_namespace() else _ROOT_OPTIONS
    for extra in (*(f"{e},volatile" for e in sets), *sets) if volatile else sets:
        opts, chdir = _overlay_options(lowers, upper, work, extra)
        cwd = os.getcwd() if chdir else None
        try:
            if chdir:
                os.chdir(chdir)
            mount("overlay", str(target), "overlay", 0, opts)
            return
        except OSError as e:
            last = e
            if e.errno not in (errno.EINVAL, errno.EPERM):
                break
        finally:
            if cwd:
                os.chdir(cwd)
    assert last is not None
    raise last


def _mount_program() -> str:
    """``$STRATA_OVERLAY_MOUNT_PROGRAM`` (Podman's ``mount_program``): ``fuse-overlayfs`` to always use it."""
    return os.environ.get("STRATA_OVERLAY_MOUNT_PROGRAM", "")


def mount_fuse_overlay(lowers: list[Path], upper: Path, work: Path, target: Path, extra: str = "") -> None:
    """The same stack through fuse-overlayfs (a FUSE daemon of the user's), where the kernel refuses an
    overlay mount in the user namespace; its opaque dirs carry ``user.fuseoverlayfs.opaque``."""
    import subprocess

    if shutil.which("fuse-overlayfs") is None:
        raise OSError(errno.ENOENT, "fuse-overlayfs not found: install the fuse-overlayfs package")
    opts = f"lowerdir={':'.join(str(p) for p in reversed(lowers))},upperdir={upper},workdir={work}"
    opts += f",{extra}" if extra else ""
    done = subprocess.run(["fuse-overlayfs", "-o", opts, str(target)], capture_output=True, text=True,
                          check=False, stdin=subprocess.DEVNULL)  # fmt: skip
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
        raise OSError(errno.EPERM, f"fuse-overlayfs on {target}: {detail}")


def mount_layers(
    lowers: list[Path], upper: Path, work: Path, target: Path, before_fuse: Callable[[], None] = lambda: None,
    *, volatile: bool = False,
) -> None:
    """The kernel's overlay, else (in a user namespace, or when asked for) fuse-overlayfs;
    ``before_fuse()`` is called before fuse-overlayfs is tried (it may raise OSError to prevent it).
    ``volatile``: the kernel's overlay mounted without syncs (``mount_overlay``)."""
    if _mount_program() == "fuse-overlayfs":
        before_fuse()
        mount_fuse_overlay(lowers, upper, work, target)
        return
    try:
        mount_overlay(lowers, upper, work, target, volatile=volatile)
    except OSError as e:
        if not in_user_namespace() or shutil.which("fuse-overlayfs") is None:
            raise
        try:
            before_fuse()
            mount_fuse_overlay(lowers, upper, work, target)
        except OSError:
            raise e from None


def _probe(scratch: Path, how: Callable[[list[Path], Path, Path, Path], None]) -> bool:
    dirs = [scratch / n for n in ("l", "u", "w", "m")]
    try:
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
        how([dirs[0]], dirs[1], dirs[2], dirs[3])
        umount(str(dirs[3]))
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def storage_driver(scratch: Path) -> str:
    """What a new container's rootfs gets here, for ``info``: ``overlay2`` (the kernel's overlay; with
    ``userxattr`` in a user namespace), ``fuse-overlayfs`` (rootless, where the kernel refuses it) or
    ``vfs``; probed with mounts in ``scratch`` (a fresh directory under the store), removed afterwards."""
    if os.environ.get("STRATA_STORAGE_DRIVER", "") == "vfs":
        return "vfs"
    fuse = in_user_namespace() or _mount_program() == "fuse-overlayfs"
    try:
        if _mount_program() != "fuse-overlayfs" and _probe(scratch / "kernel", mount_overlay):
            return "overlay2"
        if fuse and _probe(scratch / "fuse", mount_fuse_overlay):
            return "fuse-overlayfs"
        return "vfs"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def make_init_layer(path: Path) -> None:
    """The empty mount points runc would otherwise create inside the container's upper dir."""
    for d in INIT_DIRS:
        (path / d).mkdir(parents=True, exist_ok=True)
    for f in INIT_FILES:
        (path / f).touch()
        os.chmod(path / f, 0o755)  # Docker's init layer makes its empty mount points 0755
    mtab = path / "etc" / "mtab"
    if not mtab.is_symlink():
        os.symlink("/proc/mounts", mtab)


class Rootfs:
    """The root filesystem of one container directory."""

    def __init__(self, cdir: Path, driver: str) -> None:
        if driver not in DRIVERS:
            raise StrataError(f"unknown storage driver: {driver}", exit_code=125)
        self.cdir = cdir
        self.driver = driver

    @property
    def init(self) -> Path:
        return self.cdir / "init"

    @property
    def upper(self) -> Path:
        return self.cdir / "upper"

    @property
    def work(self) -> Path:
        return self.cdir / "work"

    @property
    def path(self) -> Path:
        """Where the container's filesystem is visible (the runtime's root.path)."""
        return self.cdir / ("merged" if self.driver == "overlay" else "rootfs")

    def image_lowers(self) -> list[Path]:
        try:
            text = (self.cdir / "lowers").read_text()
        except FileNotFoundError:
            return []
        return [Path(line) for line in text.splitlines() if line]

    def lowers(self) -> list[Path]:
        """Image layers then the init layer, lowest first."""
        return [*self.image_lowers(), self.init]

    @property
    def fuse_mark(self) -> Path:
        """Made before fuse-overlayfs first mounts this rootfs (never removed): its upper dir is not in
        the kernel overlay's format (build.adopt adopts only an upper dir without it)."""
        return self.cdir / "fuse-mounted"

    def _mark_fuse(self) -> None:
        self.fuse_mark.touch()

    @property
    def _id_mapping(self) -> Path:
        return self.cdir / "fuse-idmapping"  # --userns=keep-id: fuse-overlayfs's uid/gid mapping options

    @property
    def _volatile_mark(self) -> Path:
        """Made by ``prepare(volatile=True)`` (a build step's rootfs, whose upper dir is adopted after a
        sync of the store's filesystem or discarded: never a user's container): the kernel's overlay is
        mounted ``volatile`` (its unmount syncs nothing). Holds the boot's ID."""
        return self.cdir / "volatile-boot"

    def prepare(self, image_lowers: list[Path], id_mapping: str = "", *, volatile: bool = False) -> None:
        """Create the directories (and for vfs the full copy); does not mount. ``id_mapping``: the
        fuse-overlayfs ``uidmapping=…,gidmapping=…`` every mount of this rootfs uses. ``volatile``:
        see ``_volatile_mark``."""
        self.cdir.mkdir(parents=True, exist_ok=True)
        if volatile and self.driver == "overlay":
            self._volatile_mark.write_text(_boot_id())
        if id_mapping:
            if self.driver != "overlay":
                raise StrataError("--userns=keep-id needs the overlay driver (fuse-overlayfs)", exit_code=125)
            write_bytes_atomic(self._id_mapping, id_mapping.encode())
        write_bytes_atomic(self.cdir / "lowers", "".join(f"{p}\n" for p in image_lowers).encode())
        make_init_layer(self.init)
        if self.driver == "overlay":
            for d in (self.upper, self.work, self.path):
                d.mkdir(exist_ok=True)
        else:
            self.path.mkdir(exist_ok=True)
            for layer in self.lowers():
                apply_layer_dir(layer, self.path)

    def mounted(self) -> bool:
        if self.driver == "vfs":
            return True
        return os.path.ismount(self.path)

    def mount(self) -> None:
        if self.driver == "vfs" or self.mounted():
            return
        try:
            if self._id_mapping.exists():
                mapping = self._id_mapping.read_text()
                self._mark_fuse()
                mount_fuse_overlay(self.lowers(), self.upper, self.work, self.path, mapping)
            else:
                volatile = self._volatile_ok()
                mount_layers(self.lowers(), self.upper, self.work, self.path, self._mark_fuse, volatile=volatile)
        except OSError as e:
            raise StrataError(f"error mounting container rootfs: {os_error_text(e)}") from None

    def _volatile_ok(self) -> bool:
        """Whether this rootfs mounts ``volatile``. Mounted volatile before, the kernel leaves
        ``work/work/incompat/volatile`` and refuses the work dir: that mark is taken away only in the
        boot that made it (nothing was lost: no crash since); after a reboot the mount fails."""
        try:
            boot = self._volatile_mark.read_text()
        except FileNotFoundError:
            return False
        mark = self.work / "work" / "incompat" / "volatile"
        if boot == _boot_id() and mark.is_dir():
            shutil.rmtree(mark)  # the dir and the kernel's ``dirty`` file in it
        return True

    def unmount(self) -> None:
        if self.driver == "vfs":
            return
        try:
            umount(str(self.path))
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise StrataError(f"error unmounting container rootfs: {os_error_text(e)}") from None
            umount(str(self.path), lazy=True)


def _boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def _copy_meta(src: str, dst: str, st: os.stat_result) -> None:
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        for name in os.listxattr(src, follow_symlinks=False):
            if name.startswith(_OVERLAY_XATTR_PREFIXES):
                continue
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
    except OSError:
        pass
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def apply_layer_dir(layer: Path, dest: Path) -> None:
    """Copy an overlay-format layer dir onto ``dest``, honouring whiteouts, opaque dirs and hard links."""
    links: dict[tuple[int, int], str] = {}
    dir_meta: list[tuple[str, str, os.stat_result]] = []
    for dirpath, dirnames, filenames in os.walk(layer):
        rel = os.path.relpath(dirpath, layer)
        out_dir = os.path.normpath(os.path.join(dest, rel))
        if rel != "." and is_opaque(dirpath):
            for child in os.listdir(out_dir) if os.path.isdir(out_dir) else []:
                _remove(os.path.join(out_dir, child))
        for name in [*dirnames, *filenames]:
            src = os.path.join(dirpath, name)
            dst = os.path.join(out_dir, name)
            st = os.lstat(src)
            if is_whiteout(st):
                _remove(dst)
                continue
            if stat.S_ISDIR(st.st_mode):
                if (os.path.lexists(dst) and not os.path.isdir(dst)) or os.path.islink(dst):
                    _remove(dst)
                os.makedirs(dst, exist_ok=True)
                dir_meta.append((src, dst, st))
                continue
            _remove(dst)
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                os.link(links[key], dst)
                continue
            if stat.S_ISREG(st.st_mode):
                shutil.copyfile(src, dst, follow_symlinks=False)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                os.mknod(dst, st.st_mode, st.st_rdev)
            else:
                continue
            _copy_meta(src, dst, st)
            if st.st_nlink > 1:
                links[key] = dst
    for src, dst, st in reversed(dir_meta):
        _copy_meta(src, dst, st)
