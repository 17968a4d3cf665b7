"""Types and helpers the core tests share (imported by name: ``from corehelpers import ...``; a test
module importing ``conftest`` would get whichever directory's conftest pytest loaded last)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

__all__ = ["Strata", "store_state"]

Strata = Callable[..., subprocess.CompletedProcess[str]]


def store_state(root: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    """Everything visible in a store: file names (tmp/ excluded) and every metadata row."""
    import sqlite3

    files = sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if "tmp" not in p.relative_to(root).parts[:1] and not p.name.endswith((".lock", "-wal", "-shm")) and p.name != "lock"
    )
    rows: list[tuple[str, ...]] = []
    if (root / "strata.db").exists():
        conn = sqlite3.connect(root / "strata.db")
        for table in ("blobs", "layers", "images", "image_layers", "tags", "digests"):
            rows.extend((table, *map(str, r)) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"))
        conn.close()
    return files, rows
