"""``update --restart`` of a ``--rm`` container side by side with Docker 20.10: the daemon's UpdateContainer
refusal comes wrapped as ``Cannot update container <id>: …`` (strata printed the bare reason)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.peers


def test_update_restart_of_an_autoremove_container_matches_docker(strata: Strata, busybox_image: str,
                                                                   dockerd: Any, docker_busybox: str) -> None:
    name = "ua15" + uuid.uuid4().hex[:6]
    sides = (("docker", dockerd.run, docker_busybox), ("strata", strata, busybox_image))
    seen = {}
    try:
        for who, tool, image in sides:
            tool("run", "-d", "--rm", "--name", name, image, "sleep", "300")
            cid = tool("inspect", "-f", "{{.Id}}", name).stdout.strip()
            rows = []
            for policy in ("always", "no"):
                res = tool("update", "--restart", policy, name, check=False)
                err = res.stderr.removeprefix("Error response from daemon: ").removeprefix("Error: ")
                rows.append((res.returncode, res.stdout, err.replace(cid, "<ID>")))
            seen[who] = rows
        assert seen["strata"] == seen["docker"]
        assert seen["strata"][0] == (1, "", "Cannot update container <ID>: Restart policy cannot be updated because "
                                            "AutoRemove is enabled for the container\n")
    finally:
        for _, tool, _ in sides:
            tool("rm", "-f", name, check=False)
