"""A ``--userns=keep-id`` container's ``/etc/passwd`` and ``/etc/group`` with the user's own entries, as
Podman adds them: the image's files (read inside the rootfs, resolved by the kernel in its root) with a
line for the user appended, written to the container's directory (owned by its root) and bind-mounted over the originals.
Nothing is added where the image already lists the uid (gid), or where a mount of the user's covers
``/etc`` or the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from strata.archive.dirs import read_in_root
from strata.atomicfile import write_bytes_atomic
from strata.rootless.keepid import container_root, home_of, set_home, user_entries

__all__ = ["add_user_files"]


def add_user_files(spec: dict[str, Any], cdir: Path) -> None:
    """Bind the user's passwd/group entries into the OCI ``spec`` (its rootfs must be mounted)."""
    taken = {str(m.get("destination", "")).rstrip("/") for m in spec["mounts"]}
    if "/etc" in taken:
        return
    rootfs = spec["root"]["path"]
    current = {name: read_in_root(rootfs, f"/etc/{name}") for name in ("passwd", "group")
               if f"/etc/{name}" not in taken}  # fmt: skip
    home = home_of(spec)
    entries = user_entries(current.get("passwd"), current.get("group"), home)
    if "passwd" in entries:  # the user's entry is ours: so is its HOME (Podman's)
        set_home(spec, home)
    for name, content in entries.items():
        path = cdir / name
        write_bytes_atomic(path, content, mode=0o644)
        os.chown(path, *container_root())  # owned by the container's root, as the image's file is
        spec["mounts"].append({"destination": f"/etc/{name}", "type": "bind", "source": str(path),
                               "options": ["rbind", "rprivate"]})  # fmt: skip
