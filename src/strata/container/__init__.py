"""Containers: records, rootfs (overlayfs / vfs), OCI bundles, the runtime wrapper, commit and export.

Daemonless like Podman: state lives in ``<root>/containers.db`` and ``<root>/containers/<id>/``;
a detached container is watched by a small double-forked monitor process.
"""

from __future__ import annotations

__all__: list[str] = []
