"""A container rootfs that fuse-overlayfs ever mounted carries ``Rootfs.fuse_mark`` (made before the
mount), and build.adopt never adopts its upper dir: fuse-overlayfs's upper dir is not in the kernel
overlay's format (its own opaque markers, owners it may keep in xattrs)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from strata.build.adopt import adopt_upper
from strata.build.layerstore import store_layer
from strata.container.rootfs import Rootfs, mount_overlay, umount
from strata.engine import Engine

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlay mounts need root")


def _step(tmp_path: Path) -> tuple[Engine, Path, Path]:
    engine = Engine.open(tmp_path / "root")
    cdir = tmp_path / "root" / "containers" / "c1"
    lower, upper, work, merged = (cdir / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir(parents=True)
    mount_overlay([lower], upper, work, merged)
    (merged / "f").write_text("x\n")
    return engine, cdir, upper


def test_an_upper_dir_fuse_overlayfs_mounted_is_not_adopted(tmp_path: Path) -> None:
    engine, cdir, upper = _step(tmp_path)
    try:
        Rootfs(cdir, "overlay").fuse_mark.touch()
        with engine.writing():
            layer = store_layer(engine, upper)
            assert not adopt_upper(engine, cdir, "overlay", layer.diff_id)
        assert upper.is_dir() and not engine.store.layer_dir(layer.diff_id).exists()
        Rootfs(cdir, "overlay").fuse_mark.unlink()  # the same upper dir, kernel-mounted only: adopted
        with engine.writing():
            assert adopt_upper(engine, cdir, "overlay", layer.diff_id)
        assert (engine.store.layer_dir(layer.diff_id) / "f").read_text() == "x\n"
    finally:
        if os.path.ismount(cdir / "merged"):
            umount(str(cdir / "merged"))
        engine.close()


@pytest.mark.skipif(shutil.which("fuse-overlayfs") is None, reason="needs fuse-overlayfs")
def test_a_fuse_overlayfs_mount_leaves_the_mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cdir = tmp_path / "c"
    kernel, fuse = Rootfs(cdir / "k", "overlay"), Rootfs(cdir / "f", "overlay")
    for rootfs in (kernel, fuse):
        (rootfs.cdir / "layer").mkdir(parents=True)
        rootfs.prepare([rootfs.cdir / "layer"])
    kernel.mount()
    try:
        assert not kernel.fuse_mark.exists()
    finally:
        kernel.unmount()
    monkeypatch.setenv("STRATA_OVERLAY_MOUNT_PROGRAM", "fuse-overlayfs")
    fuse.mount()
    try:
        assert fuse.fuse_mark.exists()
    finally:
        fuse.unmount()
