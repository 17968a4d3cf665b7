"""Found by the user's-eye audit of issue 15 (``cp``), side by side with Docker 20.10: Docker's untar
refuses a symlink whose relative target leaves the directory it extracts into (``invalid symlink "P" ->
"T"``, exit 1; entries before it stay), in both directions; strata made it, on the host too."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime

SETUP = "mkdir /d && echo a > /d/f && ln -s ../../../../ /d/up && ln -s /abs /d/abs && ln -s .. /d/ok && sleep 1000"


def _error(res: subprocess.CompletedProcess[str], out: Path) -> str:
    text = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
    return re.sub(r"^(Error response from daemon: |Error: )", "", text).replace(str(out), "OUT")


def test_cp_out_refuses_an_escaping_symlink_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                                      docker_busybox: str, tmp_path: Path) -> None:
    name = f"cpsym{uuid.uuid4().hex[:8]}"
    strata("run", "-d", "--name", name, busybox_image, "sh", "-c", SETUP)
    dockerd.run("run", "-d", "--network", "none", "--name", name, docker_busybox, "sh", "-c", SETUP)
    try:
        results = {}
        for who, run in (("strata", strata), ("docker", dockerd.run)):
            out = tmp_path / who
            out.mkdir()
            for _ in range(100):  # the container's sh made /d/ok, the last of its links
                if run("exec", name, "test", "-L", "/d/ok", check=False).returncode == 0:
                    break
            whole = run("cp", f"{name}:/d", str(out) + "/", check=False)
            single = run("cp", f"{name}:/d/up", str(out / "up2"), check=False)
            kept = sorted(os.listdir(out / "d"))
            results[who] = (whole.returncode, _error(whole, out), single.returncode, _error(single, out),
                            kept, os.path.lexists(out / "up2"))
        assert results["docker"] == (1, 'invalid symlink "OUT/d/up" -> "../../../../"',
                                     1, 'invalid symlink "OUT/up2" -> "../../../../"',
                                     ["abs", "f", "ok"], False)
        assert results["strata"] == results["docker"]
    finally:
        strata("rm", "-f", name, check=False)
        dockerd.run("rm", "-f", name, check=False)


def test_cp_in_refuses_an_escaping_symlink_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                                     docker_busybox: str, tmp_path: Path) -> None:
    src = tmp_path / "src" / "d"
    src.mkdir(parents=True)
    (src / "f").write_text("a\n")
    (src / "up").symlink_to("../../../../")
    name = f"cpsymin{uuid.uuid4().hex[:8]}"
    strata("run", "-d", "--name", name, busybox_image, "sleep", "1000")
    dockerd.run("run", "-d", "--network", "none", "--name", name, docker_busybox, "sleep", "1000")
    try:
        ours = strata("cp", str(src), f"{name}:/tmp/", check=False)
        theirs = dockerd.run("cp", str(src), f"{name}:/tmp/", check=False)
        want = 'Error processing tar file(exit status 1): invalid symlink "/tmp/d/up" -> "../../../../"'
        assert (theirs.returncode, _error(theirs, tmp_path)) == (1, want)
        assert (ours.returncode, _error(ours, tmp_path)) == (1, want)
        assert strata("exec", name, "ls", "/tmp/d").stdout.split() == ["f"]
    finally:
        strata("rm", "-f", name, check=False)
        dockerd.run("rm", "-f", name, check=False)
