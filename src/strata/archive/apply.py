"""Safe, streaming extraction of a layer tar into a directory: ``apply_layer``.

Contract
--------
``apply_layer(stream, dest_dir, whiteouts=...)`` reads a (possibly compressed) layer tar once, from
start to end, and writes it below ``dest_dir``. It computes the DiffID (sha256 of the uncompressed
tar, including anything after the end-of-archive blocks) and the blob digest (of the bytes as given)
while streaming; nothing is held in memory but one chunk and the list of member names.

Nothing is ever created, changed or removed outside ``dest_dir``:

- member and hardlink names that are absolute or contain ``..`` are refused;
- every parent directory is opened component by component with ``O_NOFOLLOW`` relative to the
  parent's descriptor, so a symlink (from this layer or an earlier one) is never written through:
  a member below a symlink is refused;
- a hardlink must point at a non-directory member that came earlier in the same layer;
- existing entries are unlinked (never opened) before a new one takes their name;
- character and block devices are refused (``devices="skip"`` drops them instead; ``devices="make"``
  makes them, as Docker's layer store does, except a character device 0/0 in an overlay lower, which
  overlayfs would take for a whiteout, and where mknod is not permitted they are dropped, as Docker
  does in a user namespace); FIFOs are made;
- xattrs in the ``trusted.overlay.``, ``user.overlay.`` and ``user.fuseoverlayfs.`` namespaces are
  never taken from a tar (they would change what an overlay mount shows).

On refusal ``InvalidArchive`` names the member and the problem. What was extracted before the
refusal stays in ``dest_dir``: callers extract into a fresh temporary directory next to the final
place and rename it into place only after success (and remove it on failure).

Whiteouts (OCI image spec, layer changesets)
--------------------------------------------
``whiteouts="overlay"``: ``dest_dir`` becomes an overlayfs lower directory: ``a/.wh.b`` becomes a
character device 0/0 ``a/b`` and ``a/.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on ``a``
(``overlay_xattr_prefix="user.overlay."`` for ``userxattr`` mounts). Needs root (or a kernel that
lets unprivileged users make 0/0 whiteouts) and a filesystem with trusted xattrs.

``whiteouts="oci"`` (alias ``"flat"``): the layer is applied onto the tree already in ``dest_dir``
(e.g. the previous layers, for a flattened rootfs): ``.wh.b`` removes ``b``, an opaque marker
removes everything in the directory that this layer does not itself provide.

In both modes a whiteout applies only to lower layers: an entry of the same layer with that name
is kept, whichever comes first in the tar. ``.wh..wh.*`` names other than the opaque marker (AUFS
bookkeeping) are skipped.

``whiteouts="none"``: ``.wh.`` names are ordinary files (for archives that are not layers).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile

from strata.archive.compression import Compression, Readable, Writable, open_decompressed
from strata.archive.dirs import DirWalker, remove_entry
from strata.archive.hashing import HashReader, LayerInfo
from strata.archive.names import (
    OPAQUE_MARKER,
    WHITEOUT_META_PREFIX,
    WHITEOUT_PREFIX,
    join_name,
    split_member_name,
)
from strata.archive.tarread import iter_members, open_tar_stream, xattrs_of
from strata.digest import Digest
from strata.errors import DigestMismatch, InvalidArchive, StoreError

__all__ = ["DeviceMode", "WhiteoutMode", "apply_layer", "apply_tar", "owner_mapped", "unmapped_owner_error"]

TYPE_CHECKING = False  # not typing's: a cold build's COPY loads this module, typing costs ~3 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Literal

    WhiteoutMode = Literal["oci", "flat", "overlay", "none"]
    DeviceMode = Literal["refuse", "skip", "make"]
else:  # the names at run time (annotations are not evaluated)
    WhiteoutMode = DeviceMode = str

COPY_CHUNK = 1 << 20
_RESERVED_XATTRS = ("trusted.overlay.", "user.overlay.", "user.fuseoverlayfs.")
_CREATE_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def apply_layer(
    stream: Readable,
    dest_dir: str | os.PathLike[str],
    *,
    whiteouts: WhiteoutMode = "oci",
    devices: DeviceMode = "refuse",
    expected_diff_id: Digest | None = None,
    same_owner: bool | None = None,
    overlay_xattr_prefix: str = "trusted.overlay.",
    tee: Writable | None = None,
    on_member: Callable[[tarfile.TarInfo], None] | None = None,
) -> LayerInfo:
    """Extract the layer tar read from ``stream`` into ``dest_dir`` (made if missing).

    Returns the DiffID and sizes computed while streaming; with ``expected_diff_id`` a different
    DiffID raises ``DigestMismatch`` (after extraction: the caller discards the directory).
    ``same_owner`` (default: running as root) restores uid/gid. ``tee`` receives every byte of
    ``stream`` as read (e.g. the blob file being stored), so storing and unpacking is one pass.
    """
    blob = HashReader(stream, tee=tee)
    decompressed = open_decompressed(blob)
    plain = decompressed.compression is Compression.NONE
    blob.hashing = not plain  # the same bytes: hash them once
    tar_bytes = HashReader(decompressed)
    os.makedirs(dest_dir, exist_ok=True)
    root_fd = os.open(os.fspath(dest_dir), _OPEN_DIR)
    try:
        applier = _Applier(
            root_fd,
            whiteouts=whiteouts,
            devices=devices,
            same_owner=os.geteuid() == 0 if same_owner is None else same_owner,
            overlay_xattr_prefix=overlay_xattr_prefix,
        )
        try:
            with open_tar_stream(tar_bytes) as tf:
                for member in iter_members(tf):
                    if on_member is not None:  # the caller sees each header (a build context's sums)
                        on_member(member)
                    applier.apply(tf, member)
            applier.finish()
        finally:
            applier.close()
        tar_bytes.drain()
        blob.drain()
    finally:
        os.close(root_fd)
    info = LayerInfo(
        diff_id=tar_bytes.digest,
        size=tar_bytes.size,
        digest=tar_bytes.digest if plain else blob.digest,
        compressed_size=blob.size,
        compression=decompressed.compression,
    )
    if expected_diff_id is not None and info.diff_id != expected_diff_id:
        raise DigestMismatch(
            f"layer content does not match its diff ID: expected {expected_diff_id}, got {info.diff_id}"
        )
    return info


def apply_tar(
    stream: Readable,
    dest_dir: str | os.PathLike[str],
    *,
    devices: DeviceMode = "refuse",
    tee: Writable | None = None,
    on_member: Callable[[tarfile.TarInfo], None] | None = None,
) -> LayerInfo:
    """Extract any tar (no whiteout meaning, same safety rules), e.g. an outer docker-archive."""
    return apply_layer(stream, dest_dir, whiteouts="none", devices=devices, same_owner=False, tee=tee,
                       on_member=on_member)  # fmt: skip


class _Applier:
    def __init__(
        self,
        root_fd: int,
        *,
        whiteouts: WhiteoutMode,
        devices: DeviceMode,
        same_owner: bool,
        overlay_xattr_prefix: str,
    ) -> None:
        if whiteouts not in ("oci", "flat", "overlay", "none"):
            raise ValueError(f"unknown whiteout mode {whiteouts!r}")
        self.root_fd = root_fd
        self.mode = "flat" if whiteouts == "oci" else whiteouts
        self.devices = devices
        self.same_owner = same_owner
        self.opaque_xattr = overlay_xattr_prefix + "opaque"
        self.walker = DirWalker(root_fd)
        self.files: set[tuple[str, ...]] = set()  # non-directories written by this layer
        self.touched: set[tuple[str, ...]] = set()  # every entry of this layer and its ancestors
        self.dirs: dict[tuple[str, ...], tarfile.TarInfo] = {}  # metadata applied in finish()
        self.whiteout_devs: set[tuple[str, ...]] = set()  # overlay mode: 0/0 devices made here

    def close(self) -> None:
        self.walker.close()

    # --- dispatch ------------------------------------------------------------------------------

    def apply(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = split_member_name(member.name)
        if parts and self.mode != "none" and parts[-1].startswith(WHITEOUT_PREFIX):
            self._whiteout(member, parts)
            return
        if not parts:
            if not member.isdir():
                raise InvalidArchive(f"refusing {member.name!r}: the root of a layer must be a directory")
            self.dirs[parts] = member
            return
        kind = self._check_type(member)
        if kind is None:
            return
        self._touch(parts)
        parent = self._parent(parts, member)
        try:
            if kind == "dir":
                self._make_dir(parent, parts, member)
            elif kind == "file":
                self._make_file(tf, parent, parts, member)
            elif kind == "symlink":
                self._make_symlink(parent, parts, member)
            elif kind == "hardlink":
                self._make_hardlink(parent, parts, member)
            elif kind == "device":
                self._make_device(parent, parts, member)
            else:
                self._replace(parent, parts)
                os.mkfifo(parts[-1], 0o600, dir_fd=parent)
                self._set_meta(parent, parts[-1], member)
        finally:
            os.close(parent)
        if kind != "dir":
            self.files.add(parts)

    def _check_type(self, member: tarfile.TarInfo) -> str | None:
        if member.issparse():
            raise InvalidArchive(f"refusing {member.name!r}: sparse files are not supported")
        if member.isdir():
            return "dir"
        if member.isreg():
            return "file"
        if member.issym():
            if not member.linkname:
                raise InvalidArchive(f"refusing {member.name!r}: symlink with an empty target")
            return "symlink"
        if member.islnk():
            return "hardlink"
        if member.isfifo():
            return "fifo"
        if member.ischr() or member.isblk():
            return self._device_kind(member)
        raise InvalidArchive(f"refusing {member.name!r}: unsupported tar entry type {member.type!r}")

    def _device_kind(self, member: tarfile.TarInfo) -> str | None:
        if self.devices == "skip":
            return None
        what = "character" if member.ischr() else "block"
        whiteout_like = member.ischr() and member.devmajor == member.devminor == 0 and self.mode == "overlay"
        if self.devices == "make" and not whiteout_like:
            return "device"
        reason = "it would be an overlay whiteout" if whiteout_like else "device nodes are not allowed in a layer"
        raise InvalidArchive(
            f"refusing {member.name!r}: {what} device {member.devmajor}:{member.devminor}; {reason}"
        )

    def _make_device(self, parent: int, parts: tuple[str, ...], member: tarfile.TarInfo) -> None:
        """A device node (mode 0600 until its metadata is set); skipped where mknod is not permitted."""
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        self._replace(parent, parts)
        try:
            os.mknod(parts[-1], kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
        except PermissionError:
            return  # no CAP_MKNOD (a user namespace): Docker drops device nodes there too
        self._set_meta(parent, parts[-1], member)

    def _touch(self, parts: tuple[str, ...]) -> None:
        for i in range(len(parts), 0, -1):
            prefix = parts[:i]
            if prefix in self.touched:
                break
            self.touched.add(prefix)

    def _parent(self, parts: tuple[str, ...], member: tarfile.TarInfo) -> int:
        """A descriptor of the parent directory of ``parts`` (made if missing), owned by the caller."""
        fd = self.walker.open(parts[:-1], create=True, member=member.name)
        assert fd is not None
        return os.dup(fd)

    # --- entries --------------------------------------------------------------------------------

    def _replace(self, parent: int, parts: tuple[str, ...]) -> None:
        """Make room for a new non-directory entry at ``parts`` (``parent`` must be caller-owned)."""
        if remove_entry(parent, parts[-1]):
            self.walker.forget()
        self.whiteout_devs.discard(parts)

    def _make_dir(self, parent: int, parts: tuple[str, ...], member: tarfile.TarInfo) -> None:
        name = parts[-1]
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=parent)
                self.walker.forget()
                os.mkdir(name, 0o700, dir_fd=parent)
                if parts in self.whiteout_devs:
                    # ".wh.x" and "x/" in one layer: a new directory replacing the lower one
                    self.whiteout_devs.discard(parts)
                    self._set_opaque(parts, member)
        self.files.discard(parts)
        self.dirs[parts] = member

    def _make_file(
        self, tf: tarfile.TarFile, parent: int, parts: tuple[str, ...], member: tarfile.TarInfo
    ) -> None:
        name = parts[-1]
        try:
            fd = os.open(name, _CREATE_FILE, 0o600, dir_fd=parent)
        except FileExistsError:
            self._replace(parent, parts)
            fd = os.open(name, _CREATE_FILE, 0o600, dir_fd=parent)
        try:
            src = tf.extractfile(member)
            if src is not None and member.size:
                _copy_to_fd(src, fd, member.size, member.name)
            self._set_meta_fd(fd, member)
        finally:
            os.close(fd)

    def _make_symlink(self, parent: int, parts: tuple[str, ...], member: tarfile.TarInfo) -> None:
        name = parts[-1]
        try:
            os.symlink(member.linkname, name, dir_fd=parent)
        except FileExistsError:
            self._replace(parent, parts)
            os.symlink(member.linkname, name, dir_fd=parent)
        self._set_meta(parent, name, member, symlink=True)

    def _make_hardlink(self, parent: int, parts: tuple[str, ...], member: tarfile.TarInfo) -> None:
        try:
            target = split_member_name(member.linkname, what="hardlink target")
        except InvalidArchive as e:
            raise InvalidArchive(f"refusing {member.name!r}: {e}") from None
        if target not in self.files:
            raise InvalidArchive(
                f"refusing {member.name!r}: hardlink target {member.linkname!r} is not a file "
                "earlier in this layer"
            )
        if target == parts:
            raise InvalidArchive(f"refusing {member.name!r}: hardlink to itself")
        self._replace(parent, parts)
        tparent = self.walker.open(target[:-1], create=False, member=member.name)
        try:
            if tparent is None:
                raise FileNotFoundError
            os.link(target[-1], parts[-1], src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            raise InvalidArchive(
                f"refusing {member.name!r}: hardlink target {member.linkname!r} is gone"
            ) from None

    # --- whiteouts ------------------------------------------------------------------------------

    def _whiteout(self, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        base = parts[-1]
        if base == OPAQUE_MARKER:
            self._touch(parts[:-1])
            if self.mode == "overlay":
                self._set_opaque(parts[:-1], member)
            else:
                self._flat_opaque(parts[:-1], member)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): no meaning in a layer
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise InvalidArchive(f"refusing {member.name!r}: invalid whiteout name")
        victim = (*parts[:-1], target)
        if victim in self.touched:
            return  # the same layer provides it: a whiteout hides lower layers only
        if self.mode == "overlay":
            self._overlay_whiteout(member, victim)
        else:
            parent = self.walker.open(victim[:-1], create=False, member=member.name)
            if parent is not None and remove_entry(parent, target):
                self.walker.forget()

    def _overlay_whiteout(self, member: tarfile.TarInfo, victim: tuple[str, ...]) -> None:
        self._touch(victim[:-1])
        parent = self._parent(victim, member)
        name = victim[-1]
        try:
            self._replace(parent, victim)
            try:
                os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
            except PermissionError as e:
                raise StoreError(
                    f"cannot create overlay whiteout for {member.name!r}: {e.strerror} "
                    "(overlay layers need root or unprivileged whiteout support)"
                ) from None
            if self.same_owner:
                _chown(member, name, parent)
        finally:
            os.close(parent)
        self.whiteout_devs.add(victim)

    def _set_opaque(self, parts: tuple[str, ...], member: tarfile.TarInfo) -> None:
        fd = self.walker.open(parts, create=True, member=member.name)
        assert fd is not None
        try:
            os.setxattr(fd, self.opaque_xattr, b"y")
        except OSError as e:
            raise StoreError(
                f"cannot mark {join_name(parts)!r} opaque ({self.opaque_xattr}): {e.strerror}"
            ) from None

    def _flat_opaque(self, parts: tuple[str, ...], member: tarfile.TarInfo) -> None:
        fd = self.walker.open(parts, create=False, member=member.name)
        if fd is not None:
            fd = os.dup(fd)
            try:
                self._clear_lower(fd, parts)
            finally:
                os.close(fd)

    def _clear_lower(self, dir_fd: int, parts: tuple[str, ...]) -> None:
        """Remove what lower layers put below ``parts``; keep what this layer wrote."""
        for name in sorted(os.listdir(dir_fd)):
            child = (*parts, name)
            if child not in self.touched:
                if remove_entry(dir_fd, name):
                    self.walker.forget()
                continue
            if child in self.files:
                continue
            try:
                sub = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
            except OSError:
                continue
            try:
                self._clear_lower(sub, child)
            finally:
                os.close(sub)

    # --- metadata -------------------------------------------------------------------------------

    def _set_meta_fd(self, fd: int, member: tarfile.TarInfo) -> None:
        if self.same_owner:
            _chown(member, fd)
        os.fchmod(fd, member.mode & 0o7777)
        self._set_xattrs(fd, member)
        ns = _mtime_ns(member)
        os.utime(fd, ns=(ns, ns))

    def _set_meta(self, parent: int, name: str, member: tarfile.TarInfo, *, symlink: bool = False) -> None:
        if self.same_owner:
            _chown(member, name, parent)
        if not symlink:
            os.chmod(name, member.mode & 0o7777, dir_fd=parent)  # just created by us: not a symlink
        if xattrs_of(member):
            self._set_xattrs(f"/proc/self/fd/{parent}/{name}", member)
        ns = _mtime_ns(member)
        os.utime(name, ns=(ns, ns), dir_fd=parent, follow_symlinks=False)

    def _set_xattrs(self, target: int | str, member: tarfile.TarInfo) -> None:
        for key, value in xattrs_of(member).items():
            if key.startswith(_RESERVED_XATTRS):
                continue
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    os.setxattr(target, key, value, follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
                    raise

    def finish(self) -> None:
        """Directory metadata last (children change a directory's mtime), deepest first."""
        for parts in sorted(self.dirs, key=len, reverse=True):
            member = self.dirs[parts]
            if parts:
                parent = self.walker.open(parts[:-1], create=False, member=member.name)
                if parent is None:
                    continue
                try:
                    fd = os.open(parts[-1], _OPEN_DIR, dir_fd=parent)
                except OSError:
                    continue  # replaced by a non-directory later in the layer
            else:
                fd = os.dup(self.root_fd)
            try:
                self._set_meta_fd(fd, member)
            finally:
                os.close(fd)


def _mtime_ns(member: tarfile.TarInfo) -> int:
    return round(float(member.mtime) * 1_000_000_000)


def _copy_to_fd(src: Readable, fd: int, size: int, name: str) -> None:
    left = size
    while left > 0:
        chunk = src.read(min(COPY_CHUNK, left))
        if not chunk:
            raise InvalidArchive(f"unexpected EOF: tar archive truncated inside {name!r}")
        view = memoryview(chunk)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        left -= len(chunk)


def _chown(member: tarfile.TarInfo, target: int | str, parent: int | None = None) -> None:
    """``member``'s owner set on ``target`` (a descriptor, or a name in ``parent``); an owner this user
    namespace does not map (rootless: an id beyond the subordinate ranges) refused in Podman's words."""
    try:
        if isinstance(target, int):
            os.fchown(target, member.uid, member.gid)
        else:
            os.chown(target, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        import posixpath

        path = posixpath.normpath("/" + member.name.lstrip("/"))  # Go's filepath.Join("/", name)
        raise unmapped_owner_error(member.uid, member.gid, path) from None


def unmapped_owner_error(uid: int, gid: int, path: str) -> StoreError:
    """Podman's error for an owner ``uid:gid`` of ``path`` (absolute) this user namespace does not map."""
    return StoreError(
        f"potentially insufficient UIDs or GIDs available in user namespace (requested {uid}:{gid} for {path}): "
        f"Check /etc/subuid and /etc/subgid if configured locally: lchown {path}: invalid argument"
    )


def _mapped(map_file: str, ident: int) -> bool:
    try:
        with open(map_file, encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return True  # no map to read: the chown itself decides
    for line in lines:
        w = line.split()
        if len(w) == 3 and int(w[0]) <= ident < int(w[0]) + int(w[2]):
            return True
    return False


def owner_mapped(uid: int, gid: int) -> bool:
    """Whether this process's user namespace maps both ids (always, outside a user namespace)."""
    return _mapped("/proc/self/uid_map", uid) and _mapped("/proc/self/gid_map", gid)
