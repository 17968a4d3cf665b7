"""The whole build corpus (``tests/build/corpus``) built by an unprivileged user and by root from the
same context: the same files (content, modes, owners, links), config and history lines (root's build
is Docker's: ``tests/build/test_docker_compare.py``), the same build output, and nothing left behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from rootlesshelpers import SRC, User

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "build"))
from imagetree import config_view, history_view, read_image  # noqa: E402
from test_docker_compare import CASES, COMMON_FLAGS, _prepare  # noqa: E402

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(shutil.which("runc") is None, reason="needs runc"),
]

BUSYBOX = "strata-test/busybox:latest"


def _structure(out: str) -> list[str]:
    keep = ("Step ", " ---> ", "Removing intermediate container", "Successfully", "# Executing")
    return [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in out.splitlines() if line.startswith(keep)]


@pytest.fixture(scope="module")
def root_strata(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(root's store, the busybox tar every side imports)."""
    import peers

    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = tmp_path_factory.mktemp("corpusroot")
    base.chmod(0o755)
    bb = peers.busybox_rootfs_tar(base / "bb.tar")
    bb.chmod(0o644)
    return base / "store", bb


def _as_root(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STRATA_ROOT=str(store), PYTHONPATH=str(SRC))
    done = subprocess.run([sys.executable, "-m", "strata", *args], env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _layers(archive: Path) -> list[list[tuple[object, ...]]]:
    """Each layer's members in order: name, type, mode, owner, size, link or content hash, device
    numbers and xattrs (not times: the steps ran at other times)."""
    out = []
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            blob = outer.extractfile(name)
            assert blob is not None
            with tarfile.open(fileobj=io.BytesIO(blob.read())) as layer:
                rows = []
                for m in layer:
                    f = layer.extractfile(m) if m.isfile() else None
                    content = hashlib.sha256(f.read()).hexdigest() if f else m.linkname
                    rows.append((m.name, m.type, m.mode, m.uid, m.gid, m.size, content, m.devmajor, m.devminor,
                                 sorted(m.pax_headers.items())))  # fmt: skip
            out.append(rows)
    return out


@pytest.mark.parametrize("program", ["", "fuse-overlayfs"])
@pytest.mark.parametrize("case", CASES)
def test_rootless_corpus_as_roots(case: str, program: str, user: User, root_strata: tuple[Path, Path],
                                  tmp_path: Path) -> None:  # fmt: skip
    """As root's build (Docker's), on the kernel's overlay (userxattr) and on fuse-overlayfs."""
    if program and shutil.which(program) is None:
        pytest.skip(f"needs {program}")
    store, bb = root_strata
    if not (store / "tmp").exists() or not _as_root(store, "images", "-q", BUSYBOX).stdout:
        _as_root(store, "import", "-c", 'CMD ["/bin/sh"]', str(bb), BUSYBOX)
    if user.strata("images", "-q", BUSYBOX).stdout == "":
        shutil.copy(bb, user.home / "bb.tar")  # root's tmp is not the user's to read
        os.chown(user.home / "bb.tar", user.uid, user.gid)
        user.strata("import", "-c", 'CMD ["/bin/sh"]', "bb.tar", BUSYBOX)
    tag = f"rl-corpus-{case}:1"
    where = user.home / f"corpus-{case}{program}"
    where.mkdir()
    ctx = _prepare(case, where)  # one context for both (addtar's gzip header holds the time it was made)
    for path in [where, ctx, *ctx.rglob("*")]:
        os.chown(path, user.uid, user.gid, follow_symlinks=False)
    cold = ("build", "--network", "none", "--no-cache", "-t", tag, *COMMON_FLAGS, str(ctx))
    root_out = _as_root(store, *cold).stdout
    _as_root(store, "save", "-o", str(tmp_path / "root.tar"), tag)
    user.extra_env = {"STRATA_OVERLAY_MOUNT_PROGRAM": program} if program else {}
    try:
        out = user.strata(*cold, timeout=600).stdout
    finally:
        user.extra_env = {}
    user.strata("save", "-o", str(where / "rootless.tar"), tag)
    tree, doc = read_image(where / "rootless.tar")
    root_tree, root_doc = read_image(tmp_path / "root.tar")
    layers, root_layers = _layers(where / "rootless.tar"), _layers(tmp_path / "root.tar")
    differ = {k: (root_tree.get(k), tree.get(k)) for k in sorted(set(tree) | set(root_tree))
              if tree.get(k) != root_tree.get(k)}  # fmt: skip
    assert not differ, differ
    assert layers == root_layers
    assert config_view(doc) == config_view(root_doc)
    assert history_view(doc) == history_view(root_doc)
    assert _structure(out) == _structure(root_out)
    assert user.strata("ps", "-aq").stdout == ""
    info = user.strata("unshare", "cat", "/proc/self/mountinfo").stdout
    assert [line for line in info.splitlines() if str(user.home) in line.split()[4]] == []
