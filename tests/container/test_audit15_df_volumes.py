"""``system df`` volumes side by side with Docker 20.10: the daemon sizes only local volumes made without
driver options (LocalVolumesSize), so a tmpfs volume is not counted, and ``-v`` lists each counted volume
with its links (containers using it) and size (strata's ``-v`` listed none and counted every volume)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.peers


def _volume_lines(text: str, tag: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.startswith(tag)]


def test_system_df_counts_and_lists_volumes_as_docker(strata: Strata, busybox_image: str, dockerd: Any,
                                                       docker_busybox: str) -> None:
    tag = "dfv15" + uuid.uuid4().hex[:6]
    sides = (("docker", dockerd.run, docker_busybox), ("strata", strata, busybox_image))
    seen = {}
    try:
        for who, tool, image in sides:
            before = tool("system", "df", "--format", "{{.Type}} {{.TotalCount}}").stdout
            tool("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", f"{tag}tmpfs")
            tool("run", "--name", f"{tag}c", "-v", f"{tag}data:/d", image, "sh", "-c", "echo hello > /d/f")
            after = tool("system", "df", "--format", "{{.Type}} {{.TotalCount}}").stdout
            counts = [(b.rsplit(" ", 1)[0], int(a.rsplit(" ", 1)[1]) - int(b.rsplit(" ", 1)[1]))
                      for b, a in zip(before.splitlines(), after.splitlines(), strict=True)]
            seen[who] = (counts, _volume_lines(tool("system", "df", "-v").stdout, tag))
        assert seen["strata"] == seen["docker"]
        assert seen["strata"][1] == [f"{tag}data 1 6B"]
    finally:
        for _, tool, _ in sides:
            tool("rm", "-f", f"{tag}c", check=False)
            tool("volume", "rm", "-f", f"{tag}tmpfs", f"{tag}data", check=False)
