"""``export`` of a ``--userns=keep-id`` container has the owners the container saw (as ``commit`` has):
its rootfs is read in the rootless namespace, where container uid N < the user's uid is N+1 (it wrote
1001 for the container's 1000, and the user's own files as 0)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


def test_keep_id_export_has_the_container_owners(user: User) -> None:
    image = import_busybox(user, "keepidexport:1")
    script = f"touch /by-1000 /by-user /by-root && chown 1000:1000 /by-1000 && chown {user.uid}:{user.gid} /by-user"
    user.strata("run", "--name", "kex", "-u", "0", "--userns", "keep-id", "--network", "none", image, "sh", "-c", script)
    try:
        user.strata("export", "-o", "kex.tar", "kex")
    finally:
        user.strata("rm", "kex")
    with tarfile.open(user.home / "kex.tar") as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert owners["by-1000"] == owners["home/user"] == (1000, 1000)
    assert owners["by-user"] == (user.uid, user.gid)
    assert owners["by-root"] == owners["bin/busybox"] == (0, 0)
