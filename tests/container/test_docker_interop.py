"""Images strata commits run in Docker 20.10, and images Docker commits run in strata."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from container_helpers import Strata, runtime_missing

from peers import Dockerd

pytestmark = [pytest.mark.peers, pytest.mark.runtime]


@pytest.fixture(autouse=True)
def _need_runtime() -> None:
    reason = runtime_missing()
    if reason:
        pytest.skip(reason)


def test_strata_commit_runs_in_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, tmp_path: Path) -> None:
    strata("run", "--name", "commit_test", busybox_image, "sh", "-c", "echo test_first! >> first")
    strata("commit", "-a", "alicek106", "-m", "my first commit", "commit_test", "commit_test:first")
    strata("run", "--name", "commit_test2", "commit_test:first", "sh", "-c", "echo test_second! >> second")
    strata("commit", "-a", "alicek106", "-m", "my second commit", "commit_test2", "commit_test:second")
    archive = tmp_path / "second.tar"
    strata("save", "-o", str(archive), "commit_test:second")
    assert dockerd.run("load", "-i", str(archive)).stdout.strip() == "Loaded image: commit_test:second"
    out = dockerd.run("run", "--rm", "--network", "none", "commit_test:second", "sh", "-c", "cat /first /second")
    assert out.stdout == "test_first!\ntest_second!\n"
    history = dockerd.run("history", "commit_test:second").stdout.splitlines()
    assert re.search(r"sh -c echo test_second! >> second\s+13B\s+my second commit$", history[1]), history
    assert re.search(r"sh -c echo test_first! >> first\s+12B\s+my first commit$", history[2]), history
    dockerd.run("rmi", "commit_test:second")


def test_docker_commit_runs_in_strata(strata: Strata, docker_busybox: str, dockerd: Dockerd, tmp_path: Path) -> None:
    name = f"dc{tmp_path.name[-8:]}".replace("-", "")
    dockerd.run("run", "--network", "none", "--name", name, docker_busybox, "sh", "-c",
                "echo from-docker > /d; rm /etc/group")
    dockerd.run("commit", name, "docker-made:1")
    dockerd.run("rm", name)
    archive = tmp_path / "docker.tar"
    dockerd.run("save", "-o", str(archive), "docker-made:1")
    strata("load", "-i", str(archive))
    out = strata("run", "--rm", "docker-made:1", "sh", "-c", "cat /d; ls /etc/group 2>&1 || true")
    assert out.stdout.splitlines() == ["from-docker", "ls: /etc/group: No such file or directory"]
    dockerd.run("rmi", "docker-made:1")
