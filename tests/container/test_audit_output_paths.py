"""Found by the user's-eye audit of issue 15: ``save -o``/``export -o`` did not run the Docker CLI's
``ValidateOutputPath``: ``strata save -o /dev/null IMAGE`` wrote a temporary file beside the device and
renamed it over it (the machine's /dev/null became a regular file); a missing directory gave a temp
file's error. Docker refuses both before it looks anything up. The device here is the test's own node
(made with mknod), never the machine's /dev/null."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime


def _error(res: subprocess.CompletedProcess[str], tmp: Path) -> str:
    return re.sub(r"^(Error response from daemon: |Error: )", "", res.stderr.strip()).replace(str(tmp), "TMP")


@pytest.fixture
def device(tmp_path: Path) -> Path:
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return node


def test_output_paths_checked_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                                        device: Path, tmp_path: Path) -> None:
    name = f"outpath{uuid.uuid4().hex[:8]}"
    strata("create", "--name", name, busybox_image, "true")
    dockerd.run("create", "--name", name, docker_busybox, "true")
    missing = tmp_path / "no-such-dir" / "x.tar"
    try:
        for args, what in ((("save", "-o", str(device), busybox_image), "save image"),
                           (("save", "-o", str(missing), busybox_image), "save image"),
                           (("save", "-o", str(missing), "nosuch:1"), "save image"),
                           (("export", "-o", str(device), name), "export container"),
                           (("export", "-o", str(missing), "nosuch"), "export container"),
                           (("cp", f"{name}:/bin/sh", str(device)), "")):
            docker_args = [docker_busybox if a == busybox_image else a for a in args]
            theirs = dockerd.run(*docker_args, check=False)  # first: strata must not have replaced the node
            ours = strata(*args, check=False)
            assert theirs.returncode == 1 and _error(theirs, tmp_path).startswith(f"failed to {what}" if what else "")
            assert (ours.returncode, _error(ours, tmp_path)) == (theirs.returncode, _error(theirs, tmp_path)), args
            assert stat.S_ISCHR(device.stat().st_mode), args  # the device is still a device
        assert not missing.parent.exists()
    finally:
        strata("rm", "-f", name, check=False)
        dockerd.run("rm", "-f", name, check=False)
