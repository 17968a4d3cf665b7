"""``cp``: files between a container and the host, as Docker 20.10's CLI and daemon do it together.

The container's tree is reached only through a directory descriptor of its root filesystem (Docker's
``BaseFS``: the overlay mount, mounted for the copy when the container is not running, or the ``vfs``
copy); every path in it is resolved by the kernel with
``openat2(RESOLVE_IN_ROOT)`` and every entry below is read or written with ``O_NOFOLLOW`` relative to
its parent (``container.copytar``). A symlink a container plants (``/data -> /etc``) resolves inside
the container, never on the host, in either direction and whatever it changes during the copy.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from strata.archive.dirs import open_in_root
from strata.container.copymounts import private_mounts, volumes_mounted
from strata.container.copypaths import (
    CopyInfo,
    abs_local,
    base,
    clean,
    prepare_copy,
    preserve_trailing,
    split_dir_entry,
    validate_output_path,
)
from strata.container.copytar import (
    Members,
    Owner,
    extract_members,
    rebase,
    tar_members,
    tree_members,
    write_members,
)
from strata.container.lifecycle import container_lock
from strata.container.records import Container, ContainerStore, container_dir
from strata.container.rootfs import Rootfs
from strata.container.spec import resolve_user
from strata.errors import ContainerNotFound, NotFound, StrataError, os_error_text

__all__ = ["PathStat", "copy_from_container", "copy_to_container", "stat_path"]

_MAX_LINKS = 255
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class PathNotFound(NotFound):
    """Docker's 404 for an archive path: ``No such container:path: c:/x``."""

    def __init__(self, ref: str, path: str) -> None:
        super().__init__(f"No such container:path: {ref}:{path}")


@dataclass
class PathStat:
    """Docker's ``ContainerPathStat``: the entry itself (never followed), and where a symlink leads."""

    name: str
    mode: int
    link_target: str = ""

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.mode)


class _Root:
    """The container's root directory descriptor and the name Docker's errors give it."""

    def __init__(self, fd: int, shown: str, ref: str) -> None:
        self.fd, self.shown, self.ref = fd, shown, ref

    def resolve(self, path: str) -> str:
        """Docker's ``FollowSymlinkInScope``: ``path`` with every symlink followed inside the root
        (a missing component is kept as it is); the text only ever names what to open in the root."""
        done: list[str] = []
        rest = path
        for _ in range(_MAX_LINKS * 16):
            if not rest:
                return "/" + "/".join(done)
            part, _, rest = rest.partition("/")
            if part in ("", "."):
                continue
            if part == "..":
                done = done[:-1]
                continue
            target = self._readlink("/".join([*done, part]))
            if target is None:
                done.append(part)
                continue
            if target.startswith("/"):
                done = []
            rest = target + "/" + rest
        raise StrataError(f"EvalSymlinks: too many links in {path}")

    def _readlink(self, rel: str) -> str | None:
        try:
            fd = open_in_root(self.fd, rel, os.O_PATH | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise
        try:
            if not stat.S_ISLNK(os.fstat(fd).st_mode):
                return None
            return os.readlink("", dir_fd=fd)
        finally:
            os.close(fd)

    def open_dir(self, resolved: str) -> int:
        return open_in_root(self.fd, resolved, _DIR | os.O_NOFOLLOW)


def _lstat_error(root: _Root, given: str, absolute: str, e: OSError) -> StrataError:
    if e.errno == errno.ENOENT:
        return PathNotFound(root.ref, given)
    return StrataError(f"lstat {root.shown.rstrip('/')}{absolute}: {os_error_text(e)}")


def _parent_and_name(root: _Root, path: str) -> tuple[str, int, str]:
    """Docker's ``ResolvePath``: (the absolute path, its parent resolved in the root, the last name
    unresolved: ``""`` for a trailing ``/``, ``.`` for ``/.``)."""
    absolute = preserve_trailing(clean("/" + path), path)
    cut = absolute.rfind("/") + 1
    directory, name = absolute[:cut], absolute[cut:]
    try:
        return absolute, root.open_dir(root.resolve(directory)), name
    except OSError as e:
        raise _lstat_error(root, path, absolute, e) from None


def stat_path(root: _Root, path: str) -> PathStat:
    """Docker's ``ContainerStatPath``; a missing path raises the 404 the CLI words as ``No such container:path``."""
    absolute, parent, name = _parent_and_name(root, path)
    try:
        st = os.stat(name or ".", dir_fd=parent, follow_symlinks=False)
    except OSError as e:
        raise _lstat_error(root, path, absolute, e) from None
    finally:
        os.close(parent)
    target = root.resolve(absolute) if stat.S_ISLNK(st.st_mode) else ""
    return PathStat(base(absolute), st.st_mode, target)


def _archive(root: _Root, path: str) -> tuple[Members, PathStat]:
    """Docker's ``ContainerArchivePath``: the entry (a directory with everything below it) as members
    named after the last component of ``path``."""
    absolute, parent, name = _parent_and_name(root, path)
    try:
        st = os.stat(name or ".", dir_fd=parent, follow_symlinks=False)
    except OSError as e:
        os.close(parent)
        raise _lstat_error(root, path, absolute, e) from None
    arcname = base(absolute)

    def members() -> Members:
        try:
            yield from tree_members(parent, None if name in ("", ".") else name, arcname)
        finally:
            os.close(parent)

    return members(), PathStat(arcname, st.st_mode)


# --- the container's root --------------------------------------------------------------------


def _network_files(store: ContainerStore, c: Container) -> list[dict[str, object]]:
    """``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf`` as the container sees them (its own, or
    those of the container whose network it joins), as Docker's daemon mounts them for a copy."""
    mode = str(c.host_config.get("NetworkMode") or "")
    owner = c
    if mode.startswith("container:"):
        try:
            owner = store.get(mode.partition(":")[2])
        except NotFound:
            return []
    files = container_dir(store.root, owner.id)
    return [{"Type": "bind", "Source": str(files / name), "Destination": f"/etc/{name}", "RW": True}
            for name in ("hosts", "hostname", "resolv.conf") if (files / name).is_file()]


@contextmanager
def container_root(store: ContainerStore, c: Container, ref: str) -> Iterator[tuple[_Root, Container]]:
    """The container's root for one copy (its filesystem mounted meanwhile if it is not running, its
    volumes and network files bound in place), all in this process' private mount namespace."""
    private_mounts()  # what the copy mounts (a stopped container's rootfs, its volumes) is this process' own
    with container_lock(store.root, c.id):
        current = store.by_id(c.id)
        if current is None:
            raise ContainerNotFound(ref)
        rootfs = Rootfs(container_dir(store.root, c.id), current.driver)
        mounted_here = not rootfs.mounted()
        rootfs.mount()
        fd = os.open(rootfs.path, _DIR | os.O_NOFOLLOW)
        try:
            root = _Root(fd, str(rootfs.path), ref)
            volumes_mounted(fd, [*_network_files(store, current), *current.mounts], root.resolve)
            yield root, current
        finally:
            os.close(fd)
            if mounted_here:
                rootfs.unmount()


# --- the two directions ----------------------------------------------------------------------


def copy_from_container(store: ContainerStore, c: Container, ref: str, src: str, dst: str,
                        *, follow_link: bool, out: IO[bytes] | None) -> None:
    """``cp CTR:SRC DST`` (``DST`` ``-``: the tar to ``out``)."""
    dst_abs = dst if dst == "-" else abs_local(dst)
    if dst != "-":
        validate_output_path(dst_abs)
    with container_root(store, c, ref) as (root, current):
        rebase_name = ""
        if follow_link:
            src, rebase_name = _follow(root, src)
        members, st = _archive(root, src)
        if dst == "-":
            assert out is not None
            write_members(_as_the_container_sees(members, current), out)
            return
        info = CopyInfo(src, True, st.is_dir, rebase_name)
        if rebase_name:
            members = rebase(members, split_dir_entry(src)[1], rebase_name)
        _copy_to_host(members, info, dst_abs)


def _as_the_container_sees(members: Members, c: Container) -> Members:
    """A keep-id container's tree is read in the rootless namespace: the tar gets its members' owners as
    the container sees them (as every other container's)."""
    if c.host_config.get("UsernsMode") != "keep-id":
        return members
    from strata.rootless.keepid import container_owners

    hook = container_owners()

    def owned() -> Members:
        for info, data in members:
            hook(info)
            yield info, data

    return owned()


def _follow(root: _Root, src: str) -> tuple[str, str]:
    """``-L``: a symlink source is copied as what it points to, under the symlink's name."""
    try:
        st = stat_path(root, src)
    except StrataError:
        return src, ""
    if not st.is_link:
        return src, ""
    return _rebase_target(src, st.link_target)


def _rebase_target(path: str, resolved: str) -> tuple[str, str]:
    """Docker's ``GetRebaseName``."""
    if base(path) == "." and base(resolved) != ".":
        resolved += "/."
    if path.endswith("/") and not resolved.endswith("/"):
        resolved += "/"
    return resolved, base(path) if base(path) != base(resolved) else ""


def _destination_info(path: str) -> CopyInfo:
    """Docker's ``CopyInfoDestinationPath`` (the user's own tree: symlinks there are followed)."""
    original = path
    for _ in range(12):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            parent = split_dir_entry(path)[0]
            try:
                pst = os.stat(parent)
            except OSError as e:
                raise StrataError(f"stat {parent}: {os_error_text(e)}") from None
            if not stat.S_ISDIR(pst.st_mode):
                raise StrataError("not a directory")
            return CopyInfo(path)
        if not stat.S_ISLNK(st.st_mode):
            return CopyInfo(path, True, stat.S_ISDIR(st.st_mode))
        target = os.readlink(path)
        path = target if target.startswith("/") else os.path.join(split_dir_entry(path)[0], target)
    raise StrataError(f"too many symlinks in {original}")


def _copy_to_host(members: Members, src: CopyInfo, dst_path: str) -> None:
    dst = _destination_info(dst_path)
    dst_dir, names = prepare_copy(src, dst)
    if names is not None:
        members = rebase(members, *names)
    fd = os.open(dst_dir, _DIR)
    try:
        extract_members(members, fd, lambda info: None, dst_dir)
    finally:
        os.close(fd)


def copy_to_container(store: ContainerStore, c: Container, ref: str, src: str, dst: str,
                      *, follow_link: bool, copy_uid_gid: bool, stdin: IO[bytes] | None) -> None:
    """``cp SRC CTR:DST`` (``SRC`` ``-``: a tar read from ``stdin``)."""
    with container_root(store, c, ref) as (root, current):
        info = CopyInfo(dst)
        try:
            st: PathStat | None = stat_path(root, dst)
        except StrataError:
            st = None
        if st is not None and st.is_link:
            parent = split_dir_entry(dst)[0]
            info.path = st.link_target if st.link_target.startswith("/") else os.path.join(parent, st.link_target)
            try:
                st = stat_path(root, info.path)
            except StrataError:
                st = None
        if st is not None and (stat.S_ISCHR(st.mode) or stat.S_ISBLK(st.mode)):
            raise StrataError(f'destination "{ref}:{dst}" must be a directory or a regular file: got a device')
        if st is not None:
            info.exists, info.is_dir = True, st.is_dir
        owner = _owner(root, current, copy_uid_gid)
        if src == "-":
            if not info.is_dir:
                raise StrataError(f'destination "{ref}:{dst}" must be a directory')
            assert stdin is not None
            _extract_in(root, current, info.path, tar_members(stdin), owner)
            return
        members, src_info = _host_source(abs_local(src), follow_link)
        dst_dir, names = prepare_copy(src_info, info)
        if names is not None:
            members = rebase(members, *names)
        _extract_in(root, current, dst_dir, members, owner)


def _host_source(path: str, follow_link: bool) -> tuple[Members, CopyInfo]:
    """Docker's ``CopyInfoSourcePath`` + ``TarResource``: the host entry as members."""
    rebase_name = ""
    if follow_link:
        resolved, rebase_name = _rebase_target(path, _eval_symlinks(path))
    else:
        directory, name = path[: path.rfind("/") + 1], path[path.rfind("/") + 1:]
        resolved = _eval_symlinks(directory) + "/" + name
        if path.endswith("/") and base(path) != base(resolved):
            rebase_name = base(path)
    try:
        st = os.lstat(resolved)
    except OSError as e:
        raise StrataError(f"lstat {resolved}: {os_error_text(e)}") from None
    source_dir, source_base = split_dir_entry(resolved)
    fd = os.open(source_dir, _DIR)

    def members() -> Members:
        try:
            yield from tree_members(fd, None if source_base == "." else source_base, rebase_name or source_base)
        finally:
            os.close(fd)

    return members(), CopyInfo(resolved, True, stat.S_ISDIR(st.st_mode), rebase_name)


def _eval_symlinks(path: str) -> str:
    try:
        os.stat(path)
    except OSError as e:
        raise StrataError(f"lstat {clean(path)}: {os_error_text(e)}") from None
    return os.path.realpath(path)


def _owner(root: _Root, c: Container, copy_uid_gid: bool) -> Owner:
    """Docker keeps a copied entry's uid/gid; with ``-a`` a container with a ``USER`` gets them as that
    user's."""
    fixed: tuple[int, int] | None = None
    user = str(c.config.get("User") or "")
    if copy_uid_gid and user:
        try:
            resolved = resolve_user(Path(f"/proc/self/fd/{root.fd}"), user)
        except StrataError:
            raise StrataError(f'getent unable to find entry "{user}" in passwd database') from None
        fixed = (resolved.uid, resolved.gid)

    def owner(info: tarfile.TarInfo) -> tuple[int, int]:
        return fixed if fixed is not None else (info.uid, info.gid)

    return owner


def _extract_in(root: _Root, c: Container, path: str, members: Members, owner: Owner) -> None:
    """Docker's ``ContainerExtractToDir``: ``path`` (symlinks followed inside the root) must be a directory."""
    absolute = preserve_trailing(clean("/" + path), path)
    resolved = root.resolve(absolute)
    try:
        fd = root.open_dir(resolved)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise PathNotFound(root.ref, path) from None
        if e.errno == errno.ENOTDIR:
            raise StrataError("extraction point is not a directory") from None
        raise _lstat_error(root, path, absolute, e) from None
    try:
        on_rootfs = os.fstat(fd).st_dev == os.fstat(root.fd).st_dev
        if on_rootfs and c.host_config.get("ReadonlyRootfs"):
            raise StrataError("container rootfs is marked read-only")
        if not on_rootfs and os.fstatvfs(fd).f_flag & os.ST_RDONLY:
            raise StrataError("mounted volume is marked read-only")
        try:
            extract_members(members, fd, owner, resolved)
        except (OSError, StrataError) as e:
            text = os_error_text(e) if isinstance(e, OSError) else str(e)
            raise StrataError(f"Error processing tar file(exit status 1): {text}") from None
    finally:
        os.close(fd)
