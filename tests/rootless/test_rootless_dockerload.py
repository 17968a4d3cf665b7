"""An image committed by a rootless user, loaded into Docker 20.10 (a private dockerd), has the owners
the container saw: root-owned files are root's there, uid 1000's are 1000's (never the host's 100000+),
and a setuid bit made in the container is kept."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.peers,
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]
SCRIPT = ("echo r > /r && mkdir /owned && echo u > /owned/f && chown -R 1000:1000 /owned"
          " && cp /bin/busybox /suid && chown 0:0 /suid && chmod 4755 /suid")  # fmt: skip
STAT = "stat -c '%u:%g %a %n' /r /owned /owned/f /suid /bin/busybox"


def test_a_rootless_commit_loads_into_docker_with_container_owners(user: User, dockerd: Any) -> None:
    image = import_busybox(user, "dl:1")
    name = f"dlmake{uuid.uuid4().hex[:6]}"
    user.strata("run", "--name", name, "--network", "none", image, "sh", "-c", SCRIPT)
    ref = f"strata-rootless-{uuid.uuid4().hex[:8]}:1"
    try:
        user.strata("commit", name, ref)
    finally:
        user.strata("rm", name)
    user.strata("save", "-o", "dl.tar", ref)
    seen = user.strata("run", "--rm", "--network", "none", ref, "sh", "-c", STAT).stdout
    saved = Path(dockerd.root) / f"{uuid.uuid4().hex}.tar"
    shutil.copyfile(user.home / "dl.tar", saved)
    try:
        dockerd.run("load", "-i", str(saved))
        there = dockerd.run("run", "--rm", "--network", "none", ref, "sh", "-c", STAT).stdout
    finally:
        os.unlink(saved)
        dockerd.run("rmi", ref, check=False)
    assert there == seen == ("0:0 644 /r\n1000:1000 755 /owned\n1000:1000 644 /owned/f\n0:0 4755 /suid\n"
                             "0:0 755 /bin/busybox\n")  # fmt: skip
