"""Fixtures for the core store tests: a private store root and a ``strata`` runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

import peers


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
