"""``commit`` of a rootless container on fuse-overlayfs: fuse-overlayfs marks every directory it makes
opaque, the layer keeps only the marks the kernel's overlay (and Docker) would have made: a directory
removed and made again, not one made new (``rootless.fusemarks``)."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("fuse-overlayfs") is None, reason="needs fuse-overlayfs"),
]


def _last_layer(user: User, ref: str) -> list[str]:
    saved = user.home / "committed.tar"
    user.strata("save", "-o", str(saved), ref)
    with tarfile.open(saved) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        blob = outer.extractfile(manifest[0]["Layers"][-1])
        assert blob is not None
        with tarfile.open(fileobj=blob) as layer:
            return sorted(m.name.rstrip("/") for m in layer)


@pytest.mark.parametrize("program", ["", "fuse-overlayfs"])
def test_rootless_commit_keeps_only_the_kernels_opaque_marks(user: User, program: str) -> None:
    if user.strata("images", "-q", "marks:base").stdout == "":
        import_busybox(user, "marks:base")
    user.extra_env = {"STRATA_OVERLAY_MOUNT_PROGRAM": program} if program else {}
    try:
        name = f"marks-{program or 'kernel'}"
        user.strata("run", "--name", name, "--network", "none", "marks:base", "sh", "-c",
                    "mkdir -p /new/sub && rm -r /var/www && mkdir /var/www && echo n > /var/www/n")  # fmt: skip
        user.strata("commit", name, f"marks:{program or 'kernel'}")
        user.strata("rm", name)
    finally:
        user.extra_env = {}
    members = _last_layer(user, f"marks:{program or 'kernel'}")
    # /var/www was there below: removed and made again, opaque; /new and /new/sub are new: no mark
    assert [m for m in members if m.startswith(("new", "var"))] == [
        "new", "new/sub", "var", "var/www", "var/www/.wh..wh..opq", "var/www/n"]  # fmt: skip
