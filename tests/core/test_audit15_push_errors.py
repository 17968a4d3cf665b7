"""``push``/``pull`` refusals side by side with Docker 20.10: the daemon says ``The push refers to repository
[…]`` before it finds the tag missing (strata printed nothing), and ``-a`` with a tag is the CLI's plain
error, exit 1 (strata exited 125). Nothing here reaches a registry."""

from __future__ import annotations

from typing import Any

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

pytestmark = pytest.mark.peers

_CASES = (
    ("push", "nosuch-push15:1"),
    ("push", "-a", "nosuch-push15"),
    ("push", "-a", "nosuch-push15:1"),
    ("pull", "-a", "nosuch-push15:1"),
    ("push", "localhost:5999/nosuch-push15"),
    ("image", "push", "-q", "nosuch-push15:1"),
)


def _levelled(text: str) -> str:
    return "".join(line.removeprefix("Error response from daemon: ").removeprefix("Error: ")
                   for line in text.splitlines(keepends=True))


def test_push_refusals_match_docker(strata: Strata, dockerd: Any) -> None:
    seen = {}
    for who, tool in (("docker", dockerd.run), ("strata", strata)):
        seen[who] = [(r.returncode, r.stdout, _levelled(r.stderr)) for r in (tool(*c, check=False) for c in _CASES)]
    assert seen["strata"] == seen["docker"]
    assert seen["strata"][0][1] == "The push refers to repository [docker.io/library/nosuch-push15]\n"
    assert seen["strata"][2][0] == 1
