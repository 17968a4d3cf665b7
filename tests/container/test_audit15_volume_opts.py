"""``volume create -o`` checks and ``volume inspect`` maps side by side with Docker 20.10: the local driver's
validateOpts (an unknown option; ``device`` needs ``type``, ``type`` and ``o`` need ``device``), its quota
check for ``size``, each behind ``create NAME:``; and Options/Labels printed as Go maps (keys in order)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.peers

_OPTS = (("bogus=1",), ("type=x",), ("o=bind",), ("device=x",), ("size=1",), ("size=1", "o=x"), ("Type=x",),
         ("type=x", "o=y"), ("device=x", "o=y"))


def _levelled(text: str) -> str:
    return text.removeprefix("Error response from daemon: ").removeprefix("Error: ")


def test_volume_create_options_and_inspect_maps_match_docker(strata: Strata, dockerd: Any) -> None:
    tag = "vo15" + uuid.uuid4().hex[:6]
    seen: dict[str, list[tuple[int, str, str]]] = {}
    try:
        for who, tool in (("docker", dockerd.run), ("strata", strata)):
            rows = []
            for opts in _OPTS:
                res = tool("volume", "create", *(a for o in opts for a in ("-o", o)), f"{tag}bad", check=False)
                rows.append((res.returncode, res.stdout, _levelled(res.stderr)))
            tool("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", f"{tag}opt")
            tool("volume", "create", "--label", "z=1", "--label", "a=2", "--label", "m", f"{tag}lab")
            res = tool("volume", "inspect", "-f", "{{json .Options}} {{json .Labels}} {{.Options}} {{.Labels}}",
                       f"{tag}opt", f"{tag}lab")
            rows.append((res.returncode, res.stdout, res.stderr))
            seen[who] = rows
        assert seen["strata"] == seen["docker"]
        assert seen["strata"][0] == (1, "", f'create {tag}bad: invalid option: "bogus"\n')
        assert seen["strata"][-1][1].startswith('{"device":"tmpfs","o":"size=1m","type":"tmpfs"} {} ')
    finally:
        for tool in (dockerd.run, strata):
            tool("volume", "rm", "-f", f"{tag}opt", f"{tag}lab", f"{tag}bad", check=False)
