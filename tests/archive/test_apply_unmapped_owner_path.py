"""The error for a member whose owner the user namespace does not map names the member's path as
Podman's does (Go's ``filepath.Join("/", name)``): a hidden file keeps its leading dot, a ``./``
prefix and a trailing slash go. Run in a user namespace mapping only uid/gid 0 (``unshare -U -r``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

_SCRIPT = """
import io, sys, tarfile
from strata.archive import apply_layer
from strata.errors import StoreError
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
    info = tarfile.TarInfo(sys.argv[2])
    if sys.argv[2].endswith("/"):
        info.type = tarfile.DIRTYPE
    else:
        info.size = 1
    info.uid = info.gid = 5000
    tar.addfile(info, io.BytesIO(b"x") if info.size else None)
buf.seek(0)
try:
    apply_layer(buf, sys.argv[1], same_owner=True)
except StoreError as e:
    print(e)
"""


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("./.hidden", "/.hidden"),
        (".profile", "/.profile"),
        ("..x/y", "/..x/y"),
        ("./d/", "/d"),
        ("a/b", "/a/b"),
    ],
)
def test_the_unmapped_owner_error_names_the_members_path(tmp_path: Path, name: str, path: str) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    if name.startswith("..x"):
        (tmp_path / "dest" / "..x").mkdir(parents=True)
    elif name == "a/b":
        (tmp_path / "dest" / "a").mkdir(parents=True)
    done = subprocess.run(
        ["unshare", "-U", "-r", sys.executable, "-c", _SCRIPT, str(tmp_path / "dest"), name],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"no user namespace: {done.stderr.strip()}")
    assert done.stdout == (
        f"potentially insufficient UIDs or GIDs available in user namespace (requested 5000:5000 for {path}): "
        f"Check /etc/subuid and /etc/subgid if configured locally: lchown {path}: invalid argument\n"
    ), done.stderr
