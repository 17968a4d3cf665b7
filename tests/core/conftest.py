"""Fixtures for the core store tests: a private store root and a ``strata`` runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import peers

Strata = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def strata(root: Path) -> Strata:
    """Run ``strata ARGS`` as a user would, against the test's own store."""

    def run(*args: str, input: str | bytes | None = None, check: bool = True, text: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, STRATA_ROOT=str(root))
        proc = subprocess.run(
            [sys.executable, "-m", "strata", *args],
            input=input,
            capture_output=True,
            text=text,
            env=env,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"strata {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


@pytest.fixture
def cli(root: Path) -> Strata:
    """``strata ARGS`` run in this process (tests/clirunner.py): for tests that only read a command's
    output and exit code. Tests that kill, race or run containers use ``strata`` (a process of its own)."""
    from clirunner import run_cli

    def run(*args: str, input: str | bytes | None = None, check: bool = True, text: bool = True) -> subprocess.CompletedProcess[str]:
        proc = run_cli(*args, root=root, input=input, text=text)
        if check and proc.returncode != 0:
            raise AssertionError(f"strata {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rootfs") / "rootfs.tar"
    peers.busybox_rootfs_tar(path)
    return path


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
