"""Fixtures for build tests: a strata runner on a private store holding the busybox test image."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_helpers import BUSYBOX, Strata, runtime_missing


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def strata(root: Path) -> Iterator[Strata]:
    """``strata ARGS`` as a user runs it, against the test's own store; containers removed after."""
    reason = runtime_missing()
    if reason:
        pytest.skip(reason)

    def run(*args: str, input: str | bytes | None = None, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, STRATA_ROOT=str(root))
        proc = subprocess.run(
            [sys.executable, "-m", "strata", *args], input=input, capture_output=True,
            text=not isinstance(input, bytes), env=env, timeout=600, cwd=cwd,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"strata {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    yield run
    ids = run("ps", "-aq", check=False).stdout
    ids = ids.decode() if isinstance(ids, bytes) else ids
    if ids.split():
        run("rm", "-f", *ids.split(), check=False)


@pytest.fixture
def busybox(strata: Strata, busybox_tar: Path) -> str:
    strata("import", "-c", 'CMD ["/bin/sh"]', str(busybox_tar), BUSYBOX)
    return BUSYBOX
