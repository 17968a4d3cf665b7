"""A build step's rootfs is the kernel's overlay mounted ``volatile`` (issue 10: each step's unmount
synced the whole filesystem, 2-12 ms a step; the commit's adopt syncs the store's filesystem once
before anything is recorded). The kernel leaves ``work/work/incompat/volatile`` behind and refuses the
work dir afterwards: strata takes that mark away only in the boot that made it, so a rootfs mounted
volatile before a crash (a reboot) is never mounted again. A user container's rootfs never is volatile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strata.container.rootfs import Rootfs, umount
from strata.errors import StrataError

_VOLATILE = {"volatile", "fsync=volatile"}  # as the kernel shows it (6.x: fsync=volatile)


def _options(target: Path) -> set[str] | None:
    """The superblock options of the mount at ``target`` (None: nothing mounted there)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(target):
                return set(fields[fields.index("-") + 3].split(","))
    return None


def _mounted(tmp_path: Path, *, volatile: bool) -> Rootfs:
    lower = tmp_path / "lower"
    lower.mkdir()
    (lower / "base").write_text("base\n")
    rootfs = Rootfs(tmp_path / "c", "overlay")
    rootfs.prepare([lower], volatile=volatile)
    try:
        rootfs.mount()
    except StrataError as e:
        pytest.skip(f"the kernel's overlay does not mount here: {e}")
    return rootfs


def test_a_step_rootfs_mounts_volatile_and_remounts_in_the_same_boot(tmp_path: Path) -> None:
    rootfs = _mounted(tmp_path, volatile=True)
    try:
        opts = _options(rootfs.path)
        assert opts is not None and opts & _VOLATILE
        (rootfs.path / "new").write_text("written\n")
    finally:
        umount(str(rootfs.path))
    assert (rootfs.work / "work" / "incompat" / "volatile").is_dir()  # the kernel's mark
    rootfs.mount()  # same boot: nothing was lost, the mark goes and it mounts again
    try:
        assert (rootfs.path / "new").read_text() == "written\n"
        assert (rootfs.path / "base").read_text() == "base\n"
    finally:
        umount(str(rootfs.path))


def test_a_rootfs_mounted_volatile_before_a_reboot_is_never_mounted_again(tmp_path: Path) -> None:
    rootfs = _mounted(tmp_path, volatile=True)
    (rootfs.path / "new").write_text("written\n")
    umount(str(rootfs.path))
    (rootfs.cdir / "volatile-boot").write_text("0" * 32)  # as if made before a crash and reboot
    with pytest.raises(StrataError, match="error mounting container rootfs"):
        rootfs.mount()
    assert _options(rootfs.path) is None
    assert (rootfs.work / "work" / "incompat" / "volatile").is_dir()  # left for the removal
    assert (rootfs.upper / "new").read_text() == "written\n"  # nothing lost or changed


def test_a_containers_rootfs_is_not_volatile(tmp_path: Path) -> None:
    rootfs = _mounted(tmp_path, volatile=False)
    try:
        opts = _options(rootfs.path)
        assert opts is not None and not opts & _VOLATILE
        assert not os.path.exists(rootfs.cdir / "volatile-boot")
    finally:
        umount(str(rootfs.path))
