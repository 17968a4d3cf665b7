"""An owner the user's namespace does not map (an id beyond the subordinate ranges: 70000 here, with
65536 ids) in a layer or in an ``ADD``ed archive: Podman's error naming the id and the path (not a
bare ``Invalid argument``), nothing stored, and the store still works."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from rootlesshelpers import SRC, User, import_busybox

pytestmark = pytest.mark.timeout(300)

WORDS = ("Error: potentially insufficient UIDs or GIDs available in user namespace (requested 70000:70000 for "
         "/x/y): Check /etc/subuid and /etc/subgid if configured locally: lchown /x/y: invalid argument\n")  # fmt: skip


def _archive(path: Path) -> None:
    with tarfile.open(path, "w") as tar:
        for name, kind in (("x", tarfile.DIRTYPE), ("x/y", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.uid, info.gid = kind, 0o755, 1e9, 70000, 70000
            info.size = 2 if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(b"y\n") if kind == tarfile.REGTYPE else None)


def test_rootless_add_of_an_archive_with_an_unmapped_owner(user: User) -> None:
    import_busybox(user, "ids:base")
    ctx = user.home / "ctx-ids"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM ids:base\nADD data.tar /\n")
    _archive(ctx / "data.tar")
    for p in (ctx, ctx / "Dockerfile", ctx / "data.tar"):
        os.chown(p, user.uid, user.gid)
    done = user.strata("build", "-q", "--network", "none", "-t", "ids:add", str(ctx), check=False)
    assert done.returncode == 1 and done.stderr.endswith(f"Step 2/2 : ADD data.tar /\n{WORDS}")
    assert user.strata("images", "-q", "ids:add").stdout == ""
    assert user.strata("ps", "-aq").stdout == ""


def test_rootless_load_of_a_layer_with_an_unmapped_owner(user: User, tmp_path: Path) -> None:
    env = dict(os.environ, STRATA_ROOT=str(tmp_path / "store"), PYTHONPATH=str(SRC))
    _archive(tmp_path / "rootfs.tar")
    for args in (("import", str(tmp_path / "rootfs.tar"), "ids:layer"),
                 ("save", "-o", str(user.home / "ids.tar"), "ids:layer")):  # fmt: skip
        subprocess.run([sys.executable, "-m", "strata", *args], env=env, check=True, capture_output=True)
    os.chown(user.home / "ids.tar", user.uid, user.gid)
    user.strata("load", "-i", "ids.tar")  # the layer is unpacked when a container first needs it
    for _ in range(2):  # no half-unpacked layer kept: the second run fails the same way
        done = user.strata("run", "--rm", "--network", "none", "ids:layer", "true", check=False)
        assert (done.returncode, done.stderr) == (125, WORDS)
    assert user.strata("ps", "-aq").stdout == ""
    assert user.strata("images", "-q", "ids:base").stdout.strip() != ""  # the store is as it was
