"""``inspect NAME`` with no ``--type`` finds networks and volumes too, after images and containers, as the
Docker CLI's inspect goes on through the object kinds; ``--type`` keeps it to one kind; a name of no kind
is ``No such object`` (Docker 20.10's words, exit 1, ``[]`` printed)."""

from __future__ import annotations

import json
from pathlib import Path

from container_helpers import Strata


def test_generic_inspect_finds_networks_and_volumes(tmp_path: Path) -> None:
    s = Strata(tmp_path / "root")
    s("volume", "create", "gi-vol")
    s("network", "create", "gi-net")
    try:
        out = s("inspect", "-f", "{{.Name}} {{.Driver}}", "gi-vol", "gi-net", "bridge").stdout
        assert out == "gi-vol local\ngi-net bridge\nbridge bridge\n"
        docs = json.loads(s("inspect", "gi-vol").stdout)
        assert [d["Mountpoint"].endswith("/gi-vol/_data") for d in docs] == [True]
        res = s("inspect", "--type", "volume", "gi-net", check=False)
        assert (res.returncode, res.stdout, res.stderr) == (1, "[]\n", "Error: No such volume: gi-net\n")
        res = s("inspect", "--type", "network", "-f", "{{.Name}}", "gi-net").stdout
        assert res == "gi-net\n"
        res = s("inspect", "gi-nothing", check=False)
        assert (res.returncode, res.stdout, res.stderr) == (1, "[]\n", "Error: No such object: gi-nothing\n")
    finally:
        s("network", "rm", "gi-net", check=False)
        s("volume", "rm", "gi-vol", check=False)
