"""Found by the user's-eye audit of issue 9 (volumes): a volume on ``/etc`` (``--mount
type=volume,dst=/etc,volume-nocopy``) hid the container's ``/etc/hosts``, ``/etc/hostname`` and
``/etc/resolv.conf``: strata mounted them before the user's mounts. Docker sorts the network files in
with the user's mounts, fewer path components first, and leaves one out where the user mounts a file of
their own on it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime


def test_a_volume_on_etc_keeps_the_network_files_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                                            docker_busybox: str, tmp_path: Path) -> None:
    vol = f"etcvol{uuid.uuid4().hex[:8]}"
    mount = f"type=volume,src={vol},dst=/etc,volume-nocopy"
    script = "ls /etc; grep -c localhost /etc/hosts; test -s /etc/hostname && echo named"
    try:
        ours = strata("run", "--rm", "--mount", mount, busybox_image, "sh", "-c", script)
        theirs = dockerd.run("run", "--rm", "--network", "none", "--mount", mount, docker_busybox, "sh", "-c", script)
        assert ours.stdout == theirs.stdout
        assert ours.stdout.split()[:3] == ["hostname", "hosts", "resolv.conf"]
    finally:
        strata("volume", "rm", vol, check=False)
        dockerd.run("volume", "rm", vol, check=False)


def test_the_users_own_hosts_file_wins_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                                 docker_busybox: str, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.7 mine\n")
    args = ("run", "--rm", "-v", f"{hosts}:/etc/hosts:ro", "-v", f"{tmp_path}:/etc/extra")
    ours = strata(*args, busybox_image, "cat", "/etc/hosts")
    theirs = dockerd.run(*args[:2], "--network", "none", *args[2:], docker_busybox, "cat", "/etc/hosts")
    assert ours.stdout == theirs.stdout == "192.0.2.7 mine\n"
