"""Whether this process runs in a user namespace (rootless), and what that changes for overlay layers:
an unprivileged overlay mount (``userxattr``) reads opaque directories from ``user.overlay.*`` xattrs,
since ``trusted.*`` ones need ``CAP_SYS_ADMIN`` in the initial user namespace."""

from __future__ import annotations

from typing import Any

__all__ = ["OPAQUE_XATTRS", "bind_host_sysfs", "id_mappings", "in_user_namespace", "overlay_xattr_prefix"]

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


def bind_host_sysfs(spec: dict[str, Any]) -> None:
    """A rootless container on the host's network (no network namespace of its own, in the OCI spec):
    sysfs cannot be mounted for a network namespace the user namespace does not own, so the host's
    ``/sys`` is bind-mounted read-only instead, as Podman's rootless ``--network host``."""
    if any(ns.get("type") == "network" for ns in spec.get("linux", {}).get("namespaces", [])):
        return
    for mount in spec.get("mounts", []):
        if mount.get("destination") == "/sys" and mount.get("type") == "sysfs":
            mount.update(type="bind", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
