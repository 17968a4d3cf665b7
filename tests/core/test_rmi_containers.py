"""rmi against containers: Docker's conflicts, and a forced removal never pulls layers from under a container."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

pytestmark = pytest.mark.runtime


@pytest.fixture(autouse=True)
def _runc() -> None:
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")


def test_forced_rmi_keeps_a_stopped_containers_layers(strata: Strata, rootfs_tar: Path) -> None:
    image_id = strata("import", str(rootfs_tar), "held:1").stdout.strip()
    strata("run", "--name", "holder", "held:1", "sh", "-c", "echo x > /y")
    r = strata("rmi", "held:1", check=False)
    assert r.returncode == 1
    assert r.stderr == (
        'Error: conflict: unable to remove repository reference "held:1" (must force) - container '
        f"{strata('ps', '-aq').stdout.strip()} is using its referenced image {image_id[7:19]}\n"
    )
    r = strata("rmi", image_id[7:19], check=False)
    assert "image is being used by stopped container" in r.stderr and "(must be forced)" in r.stderr
    out = strata("rmi", "-f", "held:1").stdout
    assert out == f"Untagged: held:1\nDeleted: {image_id}\n"  # no layer line: the container holds them
    assert strata("start", "-a", "holder").returncode == 0
    strata("rm", "holder")


def test_running_container_is_a_hard_conflict(strata: Strata, rootfs_tar: Path) -> None:
    image_id = strata("import", str(rootfs_tar), "busy:1").stdout.strip()
    strata("run", "-d", "--name", "busy", "busy:1", "sleep", "60")
    try:
        r = strata("rmi", "-f", image_id[7:19], check=False)
        assert r.returncode == 1
        assert f"conflict: unable to delete {image_id[7:19]} (cannot be forced) - image is being used by running container" in r.stderr
    finally:
        strata("rm", "-f", "busy")
