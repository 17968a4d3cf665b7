"""``info`` names the storage driver a new container's rootfs actually gets, probed with real mounts in the
store's tmp/: ``overlay2`` (the kernel's overlay; ``userxattr: true`` in the rootless namespace),
``fuse-overlayfs`` where the kernel's is not used, ``vfs`` when configured. Each claim is checked against the
mount a container then runs on (``/`` in its own mount table)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rootlesshelpers import SRC, User, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]
ROOT_MOUNT = "mount | grep ' on / '"


@pytest.fixture(scope="module")
def image(user: User) -> str:
    return import_busybox(user, "inf:1")


def _driver_block(text: str) -> list[str]:
    """``Storage Driver:`` and its indented status lines, from ``info``'s text."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(" Storage Driver:"))
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return lines[start:end]


def _store_tmp_empty(user: User) -> bool:
    tmp = user.home / ".local" / "share" / "strata" / "tmp"
    return not tmp.exists() or not [n for n in os.listdir(tmp) if n.startswith("driver-")]


def test_rootless_info_names_kernel_overlay(user: User, image: str) -> None:
    block = _driver_block(user.strata("info").stdout)
    assert block[0] == " Storage Driver: overlay2", block
    assert [line.split(":")[0] for line in block[1:]] == [
        "  Backing Filesystem", "  Supports d_type", "  Native Overlay Diff", "  userxattr"]  # fmt: skip
    assert block[-1] == "  userxattr: true"  # unprivileged overlay: user.overlay.* xattrs
    assert user.strata("info", "--format", "{{.Driver}}").stdout == "overlay2\n"
    assert "  rootless" in user.strata("info").stdout.splitlines()
    assert _store_tmp_empty(user)  # the probe's mounts and dirs are gone
    mount = user.strata("run", "--rm", "--network", "none", image, "sh", "-c", ROOT_MOUNT).stdout
    assert mount.startswith("overlay on / type overlay") and "userxattr" in mount


def test_rootless_info_names_fuse_overlayfs(user: User, image: str) -> None:
    user.extra_env = {"STRATA_OVERLAY_MOUNT_PROGRAM": "fuse-overlayfs"}
    try:
        info = user.strata("info").stdout
        mount = user.strata("run", "--rm", "--network", "none", image, "sh", "-c", ROOT_MOUNT).stdout
    finally:
        user.extra_env = {}
    assert _driver_block(info) == [" Storage Driver: fuse-overlayfs"]  # Docker's driver has no status lines
    assert " on / type fuse.fuse-overlayfs " in mount, mount


def test_rootless_info_names_vfs_when_configured(user: User, image: str) -> None:
    user.extra_env = {"STRATA_STORAGE_DRIVER": "vfs"}
    try:
        info = user.strata("info").stdout
        name = user.strata("create", "--network", "none", image, "true").stdout.strip()
        graph = user.strata("inspect", "-f", "{{.GraphDriver.Name}}", name).stdout
        user.strata("rm", name)
    finally:
        user.extra_env = {}
    assert _driver_block(info) == [" Storage Driver: vfs"] and graph == "vfs\n"


def test_root_info_names_kernel_overlay(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("STRATA_STORAGE_DRIVER", None)
    env.pop("STRATA_OVERLAY_MOUNT_PROGRAM", None)
    root = tmp_path / "store"
    done = subprocess.run([sys.executable, "-m", "strata", "--root", str(root), "info"], env=env,
                          capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    assert _driver_block(done.stdout)[0] == " Storage Driver: overlay2"
    assert _driver_block(done.stdout)[-1] == "  userxattr: false"
    assert "  rootless" not in done.stdout.splitlines()
    assert os.listdir(root / "tmp") == []
