"""Helpers for container tests: a CLI runner on a private store root and the runtime check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Strata:
    """Runs ``python -m strata`` against one store root, as a user would in a new process each time."""

    root: Path

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["STRATA_ROOT"] = str(self.root)
        env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "strata", *args]

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            self.argv(*args), env=self.env, input=input, capture_output=True, text=True, timeout=timeout,
            check=False,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"strata {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}")
        return res


def runtime_missing() -> str | None:
    if os.geteuid() != 0:
        return "container tests need root"
    if not shutil.which("runc"):
        return "runc is not installed"
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read():
            return "overlayfs is not available"
    return None


def cleanup(s: Strata) -> None:
    """Remove every container of ``s`` and lazily unmount whatever is still mounted under its root."""
    res = s("ps", "-aq", "--no-trunc", check=False)
    ids = res.stdout.split()
    if ids:
        s("rm", "-f", *ids, check=False)
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point.startswith(str(s.root) + "/"):
                mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
