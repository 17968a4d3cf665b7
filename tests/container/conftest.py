"""Fixtures for container tests: a private strata root holding a busybox image, and a CLI runner.

Tests that start containers are marked ``runtime`` and skip (with the reason) unless we are root
with runc on PATH and overlayfs available.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from container_helpers import Strata, cleanup, runtime_missing


@pytest.fixture
def strata(tmp_path: Path) -> Iterator[Strata]:
    s = Strata(tmp_path / "root")
    yield s
    cleanup(s)


@pytest.fixture
def busybox_image(strata: Strata, busybox_tar: Path) -> str:
    """``ubuntu:14.04`` in the strata store: a one-layer busybox image imported with CMD /bin/sh."""
    reason = runtime_missing()
    if reason:
        pytest.skip(reason)
    strata("import", "-c", 'CMD ["/bin/sh"]', str(busybox_tar), "ubuntu:14.04")
    return "ubuntu:14.04"
