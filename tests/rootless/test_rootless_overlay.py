"""Overlayfs for rootless containers: mounted inside the user namespace with ``userxattr``, opaque
directories as ``user.overlay.opaque`` (trusted.* xattrs need the initial namespace), whiteouts as 0/0
character devices; ``diff``/``commit`` read them, and an image made rootless has the same layer digests
as the same changes made as root."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]
# the same changes, with fixed times so both layer tars can be compared byte for byte
CHANGES = (
    "rm /etc/passwd && rm -r /var/www && mkdir /var/www && echo new > /var/www/new && "
    "mkdir -p /opt/app && echo hi > /opt/app/f && chown -R 1000:1000 /opt/app && "
    "touch -h -d @1000000000 /var/www/new /var/www /opt/app/f /opt/app /opt /etc /var"
)
# a whiteout's tar header carries the time of the deletion (as Docker's): no plain deletion here
SAME_CHANGES = CHANGES.replace("rm /etc/passwd && ", "").replace(" /etc /var", " /var")


@pytest.fixture(scope="module")
def image(user: User) -> str:
    return import_busybox(user, "ovl:1")


OPAQUE_CHECK = """
import glob, os
for d in glob.glob(os.environ["STRATA_ROOT"] + "/layers/*/var/www"):
    print(*[n for n in os.listxattr(d) if n.endswith("overlay.opaque")], sep="", end="")
"""


def _layer_members(save_tar: Path) -> dict[str, list[tuple[str, int, int]]]:
    """Every layer of a saved image: blob name -> (member name, uid, gid), in tar order."""
    out = {}
    with tarfile.open(save_tar) as outer:
        for member in outer.getmembers():
            if not (member.isfile() and member.name.endswith("/layer.tar")):
                continue
            blob = outer.extractfile(member)
            assert blob is not None
            try:
                with tarfile.open(fileobj=io.BytesIO(blob.read())) as layer:
                    out[member.name] = [(m.name, m.uid, m.gid) for m in layer.getmembers()]
            except tarfile.ReadError:
                continue  # a config or a manifest
    return out


def test_kernel_overlay_with_userxattr_and_opaque_dirs(user: User, image: str) -> None:
    user.strata("run", "--name", "ovl", "--network", "none", "-u", "0", image, "sh", "-c", CHANGES)
    try:
        assert user.strata("inspect", "-f", "{{.GraphDriver.Name}}", "ovl").stdout == "overlay2\n"
        assert user.strata("diff", "ovl").stdout.splitlines() == [
            "C /etc", "D /etc/passwd", "A /opt", "A /opt/app", "A /opt/app/f", "C /var", "C /var/www",
            "D /var/www/index.html", "A /var/www/new",
        ]  # fmt: skip
        user.strata("commit", "ovl", "ovl:2")
    finally:
        user.strata("rm", "ovl", check=False)
    script = "mount | grep ' on / '; ls /var/www; test -e /etc/passwd || echo gone; stat -c %u /opt/app/f"
    done = user.strata("run", "--rm", "--network", "none", image.replace(":1", ":2"), "sh", "-c", script)
    mount, *rest = done.stdout.splitlines()
    assert mount.startswith("overlay on / type overlay") and "userxattr" in mount
    assert rest == ["new", "gone", "1000"]  # the opaque dir hides index.html, the whiteout /etc/passwd
    user.strata("save", "-o", "ovl2.tar", "ovl:2")
    layers = _layer_members(user.home / "ovl2.tar")
    top = next(m for m in layers.values() if any(n == "etc/.wh.passwd" for n, _, _ in m))
    assert ("var/www/.wh..wh..opq", 0, 0) in top and ("opt/app/f", 1000, 1000) in top
    marked = user.strata("unshare", str(user.python), "-c", OPAQUE_CHECK).stdout
    assert marked == "user.overlay.opaque"  # trusted.* xattrs cannot be set in a user namespace


def _as_root(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STRATA_ROOT=str(store))
    env.pop("_STRATA_USERNS", None)
    return subprocess.run([sys.executable, "-m", "strata", *args], env=env, capture_output=True, text=True,
                          check=True, timeout=300)  # fmt: skip


def test_the_same_changes_rootless_and_as_root_give_the_same_layers(user: User, image: str, tmp_path: Path) -> None:
    user.strata("run", "--name", "same", "--network", "none", "-u", "0", image, "sh", "-c", SAME_CHANGES)
    user.strata("commit", "same", "same:1")
    user.strata("rm", "same")
    rootless = json.loads(user.strata("inspect", "-f", "{{json .RootFS.Layers}}", "same:1").stdout)
    store = tmp_path / "store"
    _as_root(store, "import", str(user.home / "bb.tar"), "ovl:1")
    _as_root(store, "run", "--name", "same", "--network", "none", "-u", "0", image, "sh", "-c", SAME_CHANGES)
    _as_root(store, "commit", "same", "same:1")
    _as_root(store, "rm", "same")
    rootful = json.loads(_as_root(store, "inspect", "-f", "{{json .RootFS.Layers}}", "same:1").stdout)
    assert len(rootless) == 2 and rootless == rootful


@pytest.mark.skipif(shutil.which("fuse-overlayfs") is None, reason="needs fuse-overlayfs")
def test_fuse_overlayfs_where_asked_gives_the_same_changes(user: User, image: str) -> None:
    """fuse-overlayfs (the fallback where the kernel refuses overlay in a user namespace) stacks the same
    layers; its upper dir's own opaque markers do not show up as changes."""
    user.extra_env = {"STRATA_OVERLAY_MOUNT_PROGRAM": "fuse-overlayfs"}
    try:
        user.strata("run", "--name", "fz", "--network", "none", "-u", "0", image, "sh", "-c", CHANGES)
        try:
            changes = user.strata("diff", "fz").stdout.splitlines()
            user.strata("commit", "fz", "fz:1")
        finally:
            user.strata("rm", "fz", check=False)
        script = "mount | grep ' on / '; ls /var/www; test -e /etc/passwd || echo gone"
        done = user.strata("run", "--rm", "--network", "none", "fz:1", "sh", "-c", script).stdout.splitlines()
    finally:
        user.extra_env = {}
        user.strata("rmi", "fz:1", check=False)
    assert changes == ["C /etc", "D /etc/passwd", "A /opt", "A /opt/app", "A /opt/app/f", "C /var", "C /var/www",
                       "D /var/www/index.html", "A /var/www/new"]  # fmt: skip
    assert done[0].startswith("fuse-overlayfs on / type fuse.fuse-overlayfs") and done[1:] == ["new", "gone"]
    assert user.strata("ps", "-aq").stdout == ""


DRIVER_CHECK = """
import os, sys, tempfile
from pathlib import Path
from strata.container.rootfs import storage_driver
scratch = Path(tempfile.mkdtemp(dir=os.environ["STRATA_ROOT"] + "/tmp"))
print(storage_driver(scratch / "probe"))
scratch.rmdir()
"""


def test_storage_driver_names_the_choice_for_info(user: User, image: str) -> None:
    """``rootfs.storage_driver()`` (for ``info``): the kernel's overlay with userxattr here, fuse-overlayfs
    when asked for, and nothing left mounted or behind."""
    assert user.strata("unshare", str(user.python), "-c", DRIVER_CHECK).stdout == "overlay2\n"
    user.extra_env = {"STRATA_OVERLAY_MOUNT_PROGRAM": "fuse-overlayfs"}
    try:
        assert user.strata("unshare", str(user.python), "-c", DRIVER_CHECK).stdout == "fuse-overlayfs\n"
    finally:
        user.extra_env = {}
    assert list((user.home / ".local/share/strata/tmp").iterdir()) == []
