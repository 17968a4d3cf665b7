"""``--userns=keep-id`` (Podman's): the user's own uid and gid are the same inside the container.

A rootless container normally shares the user's namespace (container root = the user). With keep-id it
gets a user namespace of its own inside that one, mapped so that container uid U (the user's host uid)
is the namespace's 0 (the user) and container 0..U-1 are the namespace's 1..U (subordinate ids); the
process runs as U:G unless ``-u`` says otherwise, so what it writes to a bind mount belongs to the user.
The image's files must still show their owners from the image: fuse-overlayfs presents the layers
through the inverse shift (``uidmapping``/``gidmapping``), and files the container writes reach the upper
dir with their container-side owners (so ``commit`` records those). Kernel overlay cannot (idmapped
mounts need the host's root), so keep-id needs fuse-overlayfs.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

from strata.rootless.idmap import RootlessError
from strata.rootless.mode import in_user_namespace

__all__ = [
    "KEEP_ID",
    "apply_keep_id",
    "container_owners",
    "container_root",
    "fuse_mapping_options",
    "home_of",
    "keep_id_mapping",
    "keep_id_mappings",
    "make_namespaces",
    "namespace_ids",
    "remove_namespaces",
    "set_home",
    "user_entries",
    "userns_mode",
]

KEEP_ID = "keep-id"


def _read_map(kind: str) -> list[tuple[int, int, int]]:
    try:
        text = Path(f"/proc/self/{kind}_map").read_text()
    except OSError:
        return []
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return [(int(a), int(b), int(c)) for a, b, c in rows]


def namespace_ids(kind: str) -> tuple[int, int]:
    """(the user's host id, how many ids this rootless namespace has) for ``uid`` or ``gid``."""
    rows = _read_map(kind)
    own = next((outside for inside, outside, _ in rows if inside == 0), None)
    size = max((inside + count for inside, _, count in rows), default=0)
    if own is None or size < 2 or not in_user_namespace():
        raise RootlessError("keep-id is only supported in rootless mode")  # podman's words
    if own >= size - 1:
        raise RootlessError(f"--userns=keep-id: {kind} {own} is outside the {size} ids of the user namespace")
    return own, size


def _container_map(own: int, size: int) -> list[dict[str, int]]:
    """OCI ``uidMappings`` (container id -> id of the rootless namespace)."""
    return [
        {"containerID": 0, "hostID": 1, "size": own},
        {"containerID": own, "hostID": 0, "size": 1},
        {"containerID": own + 1, "hostID": own + 1, "size": size - own - 1},
    ]


def keep_id_mappings() -> dict[str, list[str]]:
    """Podman's ``IDMappings`` of a keep-id container: its own map (container id -> the rootless
    namespace's), as ``container:namespace:size`` lines."""
    out = {}
    for kind, key in (("uid", "UidMap"), ("gid", "GidMap")):
        own, size = namespace_ids(kind)
        out[key] = [f"{m['containerID']}:{m['hostID']}:{m['size']}" for m in _container_map(own, size)]
    return out


def container_owners() -> Any:
    """A tar member hook (``write_tar_from_dir``'s ``on_member``) giving the owners a keep-id container
    sees to the members read in the rootless namespace: the inverse of :func:`_container_map`."""
    uid, _ = namespace_ids("uid")
    gid, _ = namespace_ids("gid")

    def inverse(n: int, own: int) -> int:
        return own if n == 0 else n - 1 if n <= own else n

    def hook(info: Any) -> None:
        info.uid, info.gid = inverse(info.uid, uid), inverse(info.gid, gid)
        info.uname = info.gname = ""  # names looked up for the namespace's ids are not the container's

    return hook


def fuse_mapping_options() -> str:
    """fuse-overlayfs's ``uidmapping=…,gidmapping=…``: a file stored with id p is shown to the rootless
    namespace as the id the container's p maps to (so the container sees p again)."""
    parts = []
    for kind in ("uid", "gid"):
        own, size = namespace_ids(kind)
        # fuse-overlayfs's triple: the id stored in the layers, the id shown to this namespace, count
        triples = [(m["containerID"], m["hostID"], m["size"]) for m in _container_map(own, size)]
        parts.append(f"{kind}mapping=" + ":".join(f"{a}:{b}:{c}" for a, b, c in triples))
    return ",".join(parts)


def apply_keep_id(spec: dict[str, Any], user_given: bool, userns_path: Path | None = None) -> None:
    """A user namespace of the container's own in the OCI spec (``userns_path``: the one made with its
    network namespace, joined); the process as the user unless ``-u``."""
    uid, usize = namespace_ids("uid")
    gid, gsize = namespace_ids("gid")
    linux = spec["linux"]
    user_ns = {"type": "user", **({"path": str(userns_path)} if userns_path is not None else {})}
    linux["namespaces"] = [*linux["namespaces"], user_ns]
    linux["uidMappings"] = _container_map(uid, usize)
    linux["gidMappings"] = _container_map(gid, gsize)
    if not user_given:
        spec["process"]["user"] = {"uid": uid, "gid": gid, "additionalGids": [gid]}
    for mount in spec["mounts"]:  # sysfs cannot be mounted for a network namespace the container's
        if mount["destination"] == "/sys":  # user namespace does not own: the host's, read-only
            mount.update(type="bind", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])


def container_root() -> tuple[int, int]:
    """The rootless namespace's uid and gid that are a keep-id container's root (to own its files)."""
    ids = []
    for kind in ("uid", "gid"):
        own, size = namespace_ids(kind)
        ids.append(next(m["hostID"] for m in _container_map(own, size) if m["containerID"] == 0 and m["size"]))
    return ids[0], ids[1]


def _has_id(table: bytes, field: int, value: int) -> bool:
    for line in table.decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) > field and parts[field].strip() == str(value):
            return True
    return False


def _appended(table: bytes, line: str) -> bytes:
    return table + (b"" if not table or table.endswith(b"\n") else b"\n") + line.encode()


def home_of(spec: dict[str, Any]) -> str:
    """The user's home in a keep-id container, as Podman's: the user's own home directory when it (or a
    directory above it) is a mount point in the container, else the container's working directory."""
    import pwd

    try:
        home = pwd.getpwuid(namespace_ids("uid")[0]).pw_dir
    except KeyError:
        home = ""
    targets = {str(m.get("destination", "")).rstrip("/") for m in spec.get("mounts", [])}
    here = Path(home) if home.startswith("/") else Path("/")
    while here != here.parent:
        if str(here) in targets:
            return home
        here = here.parent
    return str(spec.get("process", {}).get("cwd") or "/")


def set_home(spec: dict[str, Any], home: str) -> None:
    """``HOME`` in the container's environment unless the image or ``-e`` set it (Podman's)."""
    env = spec["process"].setdefault("env", [])
    if not any(str(e).startswith("HOME=") for e in env):
        env.append(f"HOME={home}")


def user_entries(passwd: bytes | None, group: bytes | None, home: str | None = None) -> dict[str, bytes]:
    """The container's ``/etc/passwd`` and ``/etc/group`` with the user's own entries added, as Podman's
    keep-id does (``name:*:uid:gid:gecos:home:/bin/sh``, ``name:x:gid:name``), for the files the image has
    that do not already list the user's uid (or gid); {} when nothing needs adding."""
    import grp
    import pwd

    uid, _ = namespace_ids("uid")
    gid, _ = namespace_ids("gid")
    try:
        entry = pwd.getpwuid(uid)
        name, gecos, home = entry.pw_name, entry.pw_gecos, home or entry.pw_dir
    except KeyError:
        name, gecos, home = str(uid), "", home or "/"
    try:
        group_name = grp.getgrgid(gid).gr_name
    except KeyError:
        group_name = name
    out: dict[str, bytes] = {}
    if passwd is not None and not _has_id(passwd, 2, uid):
        out["passwd"] = _appended(passwd, f"{name}:*:{uid}:{gid}:{gecos}:{home}:/bin/sh\n")
    if group is not None and not _has_id(group, 2, gid):
        out["group"] = _appended(group, f"{group_name}:x:{gid}:{name}\n")
    return out


def userns_mode(value: str) -> str:
    """``--userns``: ``host`` (the default namespace: the user's own when rootless) or ``keep-id``."""
    if value not in ("host", KEEP_ID):
        raise RootlessError(f"invalid --userns mode {value!r}: host, or keep-id (rootless)")
    if value == KEEP_ID:
        namespace_ids("uid")  # refused outside a rootless namespace, as Podman does
    return value


def keep_id_mapping(host_config: dict[str, Any]) -> str:
    """The fuse-overlayfs mapping options of a keep-id container's rootfs; "" for any other."""
    return fuse_mapping_options() if host_config.get("UsernsMode") == KEEP_ID else ""


_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MNT_DETACH = 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _bind(source: str, target: Path) -> None:
    fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
    os.close(fd)
    if _libc().mount(source.encode(), str(target).encode(), None, _MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise RootlessError(f"keep-id: cannot keep {source} at {target}: {os.strerror(err)}")


def _in_child(step: Any) -> tuple[int, int, int]:
    """Fork a child that runs ``step()`` (0 = done) and then waits; (pid, pipe to release it, status)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child exits
        try:
            os.close(ready_r)
            os.close(go_w)  # or its own copy would keep the read below from ever seeing the end
            os.write(ready_w, bytes([step()]))
            os.read(go_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    status = os.read(ready_r, 1)
    os.close(ready_r)
    return pid, go_w, status[0] if status else 255


def _release(pid: int, go_w: int) -> None:
    os.close(go_w)
    os.waitpid(pid, 0)


def _write_maps(pid: int) -> None:
    for kind in ("uid", "gid"):
        own, size = namespace_ids(kind)
        text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in _container_map(own, size))
        Path(f"/proc/{pid}/{kind}_map").write_text(text)


def make_namespaces(userns_path: Path, netns_path: Path) -> None:
    """A keep-id user namespace and a network namespace it owns, both kept by bind mounts: runc joins
    them by path, so ``exec`` (runc 1.1 joins the user namespace first) can enter the network one."""
    libc = _libc()
    pid, go, status = _in_child(lambda: 0 if libc.unshare(_CLONE_NEWUSER) == 0 else 1)
    try:
        if status != 0:
            raise RootlessError("keep-id: cannot create a user namespace")
        _write_maps(pid)
        _bind(f"/proc/{pid}/ns/user", userns_path)
    finally:
        _release(pid, go)
    user_fd = os.open(userns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid, go, status = _in_child(
            lambda: 0 if libc.setns(user_fd, _CLONE_NEWUSER) == 0 and libc.unshare(_CLONE_NEWNET) == 0 else 1
        )
    finally:
        os.close(user_fd)
    try:
        if status != 0:
            raise RootlessError("keep-id: cannot create a network namespace in its user namespace")
        _bind(f"/proc/{pid}/ns/net", netns_path)
    finally:
        _release(pid, go)


def remove_namespaces(*paths: Path) -> None:
    """Unmount and delete what :func:`make_namespaces` made (missing ones are fine)."""
    for path in paths:
        _libc().umount2(str(path).encode(), _MNT_DETACH)
        path.unlink(missing_ok=True)
