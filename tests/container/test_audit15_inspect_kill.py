"""``container inspect`` and ``kill -s`` side by side with Docker 20.10: ``container inspect --format`` is
the generic inspect on containers (a template parse error before any lookup, exit 64; ``missingkey=error``;
an empty line when nothing rendered), and ``kill`` refuses a bad signal for each container before it
looks any up (strata said ``No such container`` first)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.peers

_CASES = (
    ("container", "inspect", "-f", "{{.Name}}", "{n}missing"),
    ("container", "inspect", "-f", "{{.Name}}", "{n}missing", "{n}c"),
    ("container", "inspect", "-f", "{{.Name", "{n}c"),
    ("container", "inspect", "-f", "{{.Nope}}", "{n}c"),
    ("container", "inspect", "-f", "{{.State.Status}} {{.HostConfig.Memory}}", "{n}c"),
    ("container", "inspect", "-s", "-f", "{{.SizeRw}}", "{n}c"),
    ("container", "inspect", "{n}missing"),
    ("kill", "-s", "BOGUS", "{n}c", "{n}missing"),
    ("kill", "-s", "0", "{n}missing"),
    ("kill", "--signal=SIGKILL", "{n}missing"),
)


def _run(tool: Any, tag: str) -> list[tuple[int, str, str]]:
    out = []
    for case in _CASES:
        res = tool(*(a.replace("{n}", tag) for a in case), check=False)
        err = "".join(line.removeprefix("Error response from daemon: ").removeprefix("Error: ")
                      for line in res.stderr.splitlines(keepends=True))
        out.append((res.returncode, res.stdout, err))
    return out


def test_container_inspect_format_and_kill_signal_errors_match_docker(strata: Strata, busybox_image: str,
                                                                      dockerd: Any, docker_busybox: str) -> None:
    tag = "ik15" + uuid.uuid4().hex[:6]
    sides = (("docker", dockerd.run, docker_busybox), ("strata", strata, busybox_image))
    try:
        for _, tool, image in sides:
            tool("create", "--name", f"{tag}c", image, "true")
        seen = {who: _run(tool, tag) for who, tool, _ in sides}
        assert seen["strata"] == seen["docker"]
        assert seen["strata"][0] == (1, "\n", f"No such container: {tag}missing\n")
        assert seen["strata"][2][0] == 64
        assert seen["strata"][7] == (1, "", "Invalid signal: BOGUS\n" * 2)
    finally:
        for _, tool, _ in sides:
            tool("rm", "-f", f"{tag}c", check=False)
