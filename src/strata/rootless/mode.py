"""Whether this process runs in a user namespace (rootless), and what that changes for overlay layers:
an unprivileged overlay mount (``userxattr``) reads opaque directories from ``user.overlay.*`` xattrs,
since ``trusted.*`` ones need ``CAP_SYS_ADMIN`` in the initial user namespace."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: a build step's container loads no typing
if TYPE_CHECKING:
    from typing import Any

__all__ = ["OPAQUE_XATTRS", "bind_host_paths", "id_mappings", "in_user_namespace", "overlay_xattr_prefix"]

# every xattr an overlay implementation marks an opaque directory with (kernel as root, kernel with
# userxattr, fuse-overlayfs unprivileged)
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque")


def in_user_namespace() -> bool:
    """True unless this process's uid map is the initial namespace's identity map (read each time: a
    rootless command joins its namespace after it started)."""
    try:
        with open("/proc/self/uid_map", encoding="ascii") as f:
            lines = f.read().split("\n")
    except OSError:
        return False
    return [line.split() for line in lines if line.strip()] != [["0", "0", "4294967295"]]


def overlay_xattr_prefix() -> str:
    """The xattr namespace overlay layers are written in here: ``user.overlay.`` in a user namespace."""
    return "user.overlay." if in_user_namespace() else "trusted.overlay."


def _map_lines(kind: str) -> list[str]:
    try:
        with open(f"/proc/self/{kind}_map", encoding="ascii") as f:
            rows = [line.split() for line in f.read().splitlines() if line.strip()]
    except OSError:
        return []
    return [":".join(row) for row in rows if len(row) == 3]


def id_mappings() -> dict[str, list[str]] | None:
    """Podman's ``HostConfig.IDMappings`` of a rootless container (``container:host:size`` lines of this
    namespace's uid and gid maps); None outside a user namespace."""
    if not in_user_namespace():
        return None
    return {"UidMap": _map_lines("uid"), "GidMap": _map_lines("gid")}


# a kernel filesystem a user namespace may mount only for a namespace it owns: the namespace type, the
# mount's destination and type, and the host's path bound instead (Podman's rootless mode does the same)
_OWNED_MOUNTS = (("network", "/sys", "sysfs"), ("pid", "/proc", "proc"), ("ipc", "/dev/mqueue", "mqueue"))
_BIND = ["rbind", "nosuid", "noexec", "nodev"]


def bind_host_paths(spec: dict[str, Any], devices: list[dict[str, str]]) -> None:
    """Adapt a rootless container's OCI spec to what an unprivileged user may mount: on the host's
    network, pid or IPC namespace (none of its own in the spec) the host's ``/sys`` (read-only),
    ``/proc`` or ``/dev/mqueue`` is bound where runc would mount a new one (and fail: EPERM); a
    ``--device`` at another path than the host's is bound from the host's (runc binds a rootless
    container's device nodes from the container path, which the host does not have)."""
    linux = spec.setdefault("linux", {})
    own = {ns.get("type") for ns in linux.get("namespaces", [])}
    for ns_type, target, fs_type in _OWNED_MOUNTS:
        if ns_type in own:
            continue
        mounts = [m for m in spec.get("mounts", []) if m.get("destination") == target and m.get("type") == fs_type]
        for mount in mounts:
            if not os.path.isdir(target):  # the host has none (no mqueue mounted): the container neither
                spec["mounts"].remove(mount)
                continue
            mount.update(type="bind", source=target, options=[*_BIND, *(["ro"] if fs_type == "sysfs" else [])])
    for mapping in devices:
        host = os.path.realpath(mapping["PathOnHost"])
        inside = mapping["PathInContainer"]
        if host == inside:
            continue
        under = inside.rstrip("/") + "/"
        linux["devices"] = [d for d in linux.get("devices", []) if d.get("path") != inside
                            and not str(d.get("path", "")).startswith(under)]  # fmt: skip
        access = "rw" if "w" in mapping.get("CgroupPermissions", "rwm") else "ro"
        spec.setdefault("mounts", []).append(
            {"destination": inside, "type": "bind", "source": host, "options": ["rbind", "nosuid", "noexec", access]})
