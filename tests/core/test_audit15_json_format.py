"""``--format json`` side by side with Docker 20.10, whose list commands have no ``json`` shorthand (Docker
23.0 added it): the word is a template of plain text, printed once per row (strata printed ``{{json .}}``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

pytestmark = pytest.mark.peers


def test_json_alone_is_plain_text_as_docker_20_10(strata: Strata, dockerd: Any) -> None:
    name = "jf15" + uuid.uuid4().hex[:6]
    seen = {}
    try:
        for who, tool in (("docker", dockerd.run), ("strata", strata)):
            tool("volume", "create", name)
            seen[who] = [tool(*args).stdout for args in (
                ("volume", "ls", "--filter", f"name={name}", "--format", "json"),
                ("volume", "ls", "--filter", f"name={name}", "--format", "table json"),
                ("images", "--filter", f"reference={name}", "--format", "json"),
            )]
        assert seen["strata"] == seen["docker"] == ["json\n", "json\njson\n", ""]
    finally:
        for tool in (dockerd.run, strata):
            tool("volume", "rm", "-f", name, check=False)
