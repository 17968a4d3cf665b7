"""The container package's answer to ``strata.containeruse.ContainerUse``: which images and layers
containers use, their disk usage and inspect documents. Registered on import; the container modules
are imported only when a question is asked, so commands that never ask stay light."""

from __future__ import annotations

import os

from strata.containeruse import register
from strata.digest import Digest

TYPE_CHECKING = False  # every command registers this provider: typing's import costs a listing command
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

__all__ = ["StoreContainerUse", "disk_usage"]


def disk_usage(root: Path) -> tuple[int, int, int, int]:
    """``system df`` Containers row as Docker counts it: (containers, running or paused ones, bytes of
    their writable layers, bytes of those of the stopped ones)."""
    from strata.container.changes import rw_size
    from strata.container.lifecycle import reconcile
    from strata.container.records import ContainerStore, container_dir

    if not os.path.exists(os.path.join(root, "containers.db")):
        return 0, 0, 0, 0
    with ContainerStore(root) as store:
        containers = [reconcile(store, c) for c in store.all()]
    total = active = size = reclaimable = 0
    for c in containers:
        total += 1
        n = rw_size(container_dir(root, c.id), c.driver)
        size += n
        if c.state in ("running", "paused"):
            active += 1
        else:
            reclaimable += n
    return total, active, size, reclaimable


class StoreContainerUse:
    """Containers as ``strata.container`` keeps them: ``<root>/containers.db`` and ``<root>/containers/``."""

    def images_in_use(self, root: Path) -> dict[Digest, list[tuple[str, bool]]]:
        from strata.container.records import images_in_use

        return images_in_use(root)

    def layer_dirs_in_use(self, root: Path) -> set[str]:
        from strata.container.records import layer_dirs_in_use

        return {p.name for p in layer_dirs_in_use(root)}

    def disk_usage(self, root: Path) -> tuple[int, int, int, int]:
        return disk_usage(root)

    def volume_usage(self, root: Path) -> tuple[int, int, int, int]:
        from strata.container.volumes import volume_usage

        return volume_usage(root)

    def inspect(self, root: str | Path, name: str) -> dict[str, Any] | None:
        if not _may_answer(root, name):
            return None
        from pathlib import Path

        from strata.container.inspect import inspect_by_name

        return inspect_by_name(Path(root), name)


_HEX = frozenset("0123456789abcdef")


def _may_answer(root: str | Path, name: str) -> bool:
    """Whether a container record could answer to ``name`` (its ID, name or an ID prefix): one read-only
    query, so that ``inspect IMAGE`` (containers are looked at first) loads no container module. Any doubt
    (a database that cannot be read) says yes: the full lookup then decides and reports."""
    path = os.path.join(root, "containers.db")
    if not os.path.exists(path):
        return False
    import _sqlite3  # sqlite3 without sqlite3.dbapi2, as strata.store.db

    try:
        db = _sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            row = db.execute("SELECT 1 FROM containers WHERE id = ? OR name = ? OR (? AND id LIKE ?) LIMIT 1",
                             (name, name.lstrip("/"), _HEX.issuperset(name), name + "%")).fetchone()
        finally:
            db.close()
    except _sqlite3.Error:
        return True
    return row is not None


register(StoreContainerUse())
