"""The prune prompts side by side with Docker 20.10: the CLI asks before the daemon sees the filters, so a
bad filter answered "no" is no error, and ``volume prune`` prints ``Total reclaimed space: 0B`` after a no
as ``container``/``image prune`` do (strata's volume prune printed nothing; container prune refused the
filter before asking)."""

from __future__ import annotations

from typing import Any

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.peers

_CASES = (
    (("volume", "prune"), "n\n"),
    (("volume", "prune", "--filter", "bogus=1"), "n\n"),
    (("volume", "prune", "--filter", "bogus=1"), "y\n"),
    (("container", "prune", "--filter", "bogus=1"), "n\n"),
    (("container", "prune", "--filter", "bogus=1"), "y\n"),
    (("container", "prune", "--filter", "until=x"), "\n"),
    (("image", "prune", "--filter", "bogus=1"), "n\n"),
)


def _levelled(text: str) -> str:
    return "".join(line.removeprefix("Error response from daemon: ").removeprefix("Error: ")
                   for line in text.splitlines(keepends=True))


def test_prune_prompts_before_filters_as_docker(strata: Strata, dockerd: Any) -> None:
    seen: dict[str, list[tuple[int, str, str]]] = {}
    for who, tool in (("docker", dockerd.run), ("strata", strata)):
        seen[who] = []
        for args, answer in _CASES:
            res = tool(*args, input=answer, check=False)
            seen[who].append((res.returncode, res.stdout, _levelled(res.stderr)))
    assert seen["strata"] == seen["docker"]
    assert seen["strata"][0][1].endswith("[y/N] Total reclaimed space: 0B\n")
    assert seen["strata"][4][0] == 1
