"""``ps -n``/``-l`` side by side with Docker 20.10: ``-n 0`` or below is no limit (running containers
only, the CLI's default is -1; strata listed every container and cut the list at ``[:n]``), ``-l`` is
``-n 1`` unless ``-n`` is given, and only a limit above 0 brings stopped containers in."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.peers


def test_ps_last_and_latest_match_docker(strata: Strata, busybox_image: str, dockerd: Any,
                                         docker_busybox: str) -> None:
    tag = "psn15" + uuid.uuid4().hex[:6]
    sides = (("docker", dockerd.run, docker_busybox), ("strata", strata, busybox_image))
    try:
        for _, tool, image in sides:
            tool("run", "-d", "--name", f"{tag}up", image, "sleep", "300")
            tool("create", "--name", f"{tag}new", image, "true")  # the newest, never started
        seen = {}
        for who, tool, _ in sides:
            seen[who] = [tool("ps", *flags, "--filter", f"name={tag}", "--format", "{{.Names}}").stdout.split()
                         for flags in (["-n", "0"], ["-n", "-1"], ["-n", "-2"], ["-l", "-n", "0"], ["-l", "-n", "-1"],
                                       ["-l"], ["-n", "2"], ["-l", "-n", "2"], ["-a", "-n", "0"], ["-a", "-n", "-5"])]
        assert seen["strata"] == seen["docker"]
        assert seen["strata"][0] == [f"{tag}up"]
        assert seen["strata"][5] == [f"{tag}new"]
    finally:
        for _, tool, _ in sides:
            tool("rm", "-f", f"{tag}up", f"{tag}new", check=False)
