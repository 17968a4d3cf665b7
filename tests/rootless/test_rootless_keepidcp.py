"""``cp CONTAINER:PATH -`` from a ``--userns=keep-id`` container streams the owners the container sees, as
``export`` does (the rootless namespace's were written: 1001 for the container's 1000, ``daemon`` for
its root)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


def test_keep_id_cp_to_stdout_has_the_container_owners(user: User) -> None:
    image = import_busybox(user, "keepidcp:1")
    user.strata("create", "--name", "kcp", "--userns", "keep-id", "--network", "none", image, "true")
    try:
        done = subprocess.run(user.argv("cp", "kcp:/home", "-"), cwd=user.home, capture_output=True, check=True,
                              timeout=120)  # fmt: skip
    finally:
        user.strata("rm", "kcp")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        owners = {m.name: (m.uid, m.gid, m.uname) for m in tar.getmembers()}
    assert owners == {"home": (0, 0, ""), "home/user": (1000, 1000, "")}
