"""``ps --filter network=`` and ``is-task=`` side by side with Docker 20.10: a network the container joined
with ``network connect`` matches too (strata looked at ``--network`` only, and took ``default`` for a
name), and ``is-task`` takes ``true``/``false`` only, with the daemon's error for anything else."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.peers


def _side(tool: Any, image: str, tag: str) -> None:
    for net in ("a", "b"):
        tool("network", "create", f"{tag}{net}")
    tool("create", "--name", f"{tag}c", "--network", f"{tag}a", image, "true")
    tool("network", "connect", f"{tag}b", f"{tag}c")


def _cleanup(tool: Any, tag: str) -> None:
    tool("rm", "-f", f"{tag}c", check=False)
    tool("network", "rm", f"{tag}a", f"{tag}b", check=False)


def test_ps_network_and_is_task_filters_match_docker(strata: Strata, busybox_image: str, dockerd: Any,
                                                      docker_busybox: str) -> None:
    tag = "psf15" + uuid.uuid4().hex[:6]
    sides = (("docker", dockerd.run, docker_busybox), ("strata", strata, busybox_image))
    try:
        for _, tool, image in sides:
            _side(tool, image, tag)
        seen = {}
        for who, tool, _ in sides:
            rows = []
            for filters in ([f"network={tag}a"], [f"network={tag}b"], [f"network={tag}"], ["network=default"],
                            ["is-task=true"], ["is-task=1"], ["is-task="], ["is-task=false", "is-task=x"],
                            ["is-task=true", "is-task=x"]):
                res = tool("ps", "-a", "--format", "{{.Names}}", "--filter", f"name={tag}",
                           *(a for f in filters for a in ("--filter", f)), check=False)
                err = res.stderr.removeprefix("Error response from daemon: ").removeprefix("Error: ")
                rows.append((res.returncode, res.stdout, err))
            seen[who] = rows
        assert seen["strata"] == seen["docker"]
        assert seen["strata"][1] == (0, f"{tag}c\n", "")
        assert seen["strata"][5] == (1, "", "Invalid filter 'is-task=[1]'\n")
    finally:
        for _, tool, _ in sides:
            _cleanup(tool, tag)
