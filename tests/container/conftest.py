"""Fixtures for container tests: a private strata root holding a busybox image, and a CLI runner.

Tests that start containers are marked ``runtime`` and skip (with the reason) unless we are root
with runc on PATH and overlayfs available.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_helpers import Strata, runtime_missing


def _cleanup(s: Strata) -> None:
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


@pytest.fixture
def strata(tmp_path: Path) -> Iterator[Strata]:
    s = Strata(tmp_path / "root")
    yield s
    _cleanup(s)


@pytest.fixture
def busybox_image(strata: Strata, busybox_tar: Path) -> str:
    """``ubuntu:14.04`` in the strata store: a one-layer busybox image imported with CMD /bin/sh."""
    reason = runtime_missing()
    if reason:
        pytest.skip(reason)
    strata("import", "-c", 'CMD ["/bin/sh"]', str(busybox_tar), "ubuntu:14.04")
    return "ubuntu:14.04"
