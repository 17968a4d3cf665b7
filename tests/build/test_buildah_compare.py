"""The corpus built by ``buildah bud`` (Debian's buildah, a second peer: a private vfs store, chroot
isolation) and by ``strata build``: the same file trees and configs, apart from what buildah does its
own way and Docker does not (strata follows Docker there, see ``test_docker_compare``): the empty
mount-point files a buildah RUN leaves (``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf``,
``/run``), ``nobody`` owning the parent directories ADD makes for a local tar's members, and its
``io.buildah.version`` label."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_helpers import BUSYBOX, Strata
from imagetree import Entry, config_view, read_image
from test_docker_compare import CASES, COMMON_FLAGS, _prepare

_RUN_LEFTOVERS = {"etc/hostname", "etc/hosts", "etc/resolv.conf", "run"}
_NOBODY = 65534


@pytest.fixture(scope="module")
def buildah(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[list[str]]:
    """buildah's argv prefix on a private store holding the busybox test image."""
    if shutil.which("buildah") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("buildah is not installed (make deps installs it)")
        pytest.skip("buildah is not installed")
    where = tmp_path_factory.mktemp("buildah")
    b = ["buildah", "--root", str(where / "root"), "--runroot", str(where / "run"), "--storage-driver", "vfs"]
    cid = subprocess.run([*b, "from", "scratch"], check=True, capture_output=True, text=True).stdout.split()[-1]
    subprocess.run([*b, "add", cid, str(busybox_tar), "/"], check=True, capture_output=True)
    subprocess.run([*b, "config", "--cmd", '["/bin/sh"]', cid], check=True, capture_output=True)
    subprocess.run([*b, "commit", "-q", cid, BUSYBOX], check=True, capture_output=True)
    subprocess.run([*b, "rm", cid], check=True, capture_output=True)
    yield b
    subprocess.run([*b, "rmi", "--all", "--force"], capture_output=True, check=False)
    with open("/proc/self/mountinfo") as f:  # vfs mounts nothing; make sure before removing the store
        assert not [ln for ln in f if str(where) in ln]
    shutil.rmtree(where, ignore_errors=True)


def _buildah_only(name: str, theirs: Entry | None, ours: Entry | None) -> bool:
    if ours is None and theirs is not None and name in _RUN_LEFTOVERS and theirs[4] in ("", _EMPTY):
        return True
    return bool(theirs and ours and theirs[0] == ours[0] == "dir" and theirs[2:4] == (_NOBODY, _NOBODY)
                and ours[2:4] == (0, 0) and theirs[1] == ours[1])  # fmt: skip


_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("case", CASES)
def test_same_image_as_buildah(case: str, buildah: list[str], strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _prepare(case, tmp_path)
    tag = f"corpus-{case}:1"
    r = subprocess.run([*buildah, "bud", "--isolation", "chroot", "--format", "docker", "-t", tag, *COMMON_FLAGS, str(ctx)],
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    subprocess.run([*buildah, "push", tag, f"docker-archive:{tmp_path / 'b.tar'}:{tag}"], check=True, capture_output=True)
    strata("build", "-q", "-t", tag, *COMMON_FLAGS, str(ctx))
    strata("save", "-o", str(tmp_path / "s.tar"), tag)
    b_tree, b_doc = read_image(tmp_path / "b.tar")
    s_tree, s_doc = read_image(tmp_path / "s.tar")
    differ = {k: (b_tree.get(k), s_tree.get(k)) for k in sorted(set(b_tree) | set(s_tree))
              if b_tree.get(k) != s_tree.get(k) and not _buildah_only(k, b_tree.get(k), s_tree.get(k))}  # fmt: skip
    assert not differ, differ
    theirs = config_view(b_doc)
    (theirs.get("Labels") or {}).pop("io.buildah.version", None)
    assert config_view(s_doc) == theirs
    print(f"{case}: {len(s_tree)} entries as buildah's", file=sys.stderr)
