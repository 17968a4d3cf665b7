"""Helpers of the build tests (a module of its own: every test directory has a conftest)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

Strata = Callable[..., subprocess.CompletedProcess[str]]
BUSYBOX = "strata-test/busybox:latest"


def runtime_missing() -> str | None:
    import shutil

    if os.geteuid() != 0:
        return "building runs containers: needs root"
    if shutil.which("runc") is None:
        return "runc is not installed"
    return None


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]
