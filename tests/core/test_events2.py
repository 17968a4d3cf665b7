"""``strata events`` for networks, volumes, health and rename, and ``inspect`` without ``-s``, each run
side by side with a private Docker 20.10 daemon (tests/peers.py): the same commands, the same events."""

from __future__ import annotations

import json
import time
import uuid
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

from strata import events

_FMT = "{{.Type}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}} {{.Status}}|{{.ID}}|{{.From}}"


def _events(tool: Any, start: str, *filters: str, fmt: str = _FMT) -> list[str]:
    until = str(time.time() + 0.2)  # an explicit time: Docker's "0s" counts whole seconds
    time.sleep(0.3)
    args = [a for f in filters for a in ("--filter", f)]
    res = tool("events", "--since", start, "--until", until, *args, "--format", fmt)
    return list(res.stdout.splitlines())


def _unordered_runs(lines: list[str]) -> list[str]:
    """Docker mounts and unmounts a container's volumes in Go's map order (random): each run of
    mount (or unmount) events compared as a set."""
    out: list[str] = []
    for action, run in groupby(lines, key=lambda line: line.split(" ")[1]):
        items = list(run)
        out += sorted(items) if action in ("mount", "unmount") else items
    return out


def _until_health(tool: Any, want: dict[str, str], timeout: float = 60.0) -> None:
    """Until each container's health is the one wanted (a probe every 1s; on a loaded machine the first
    one may come late, so no fixed sleep): the status changes once, so one event each."""
    deadline = time.monotonic() + timeout
    fmt = "{{.State.Health.Status}}"
    while (seen := {name: tool("inspect", "--format", fmt, name).stdout.strip() for name in want}) != want:
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)


def _image(tool: Any, tar: Path, ref: str) -> None:
    tool("import", "-c", 'CMD ["/bin/sh"]', str(tar), ref)


@pytest.fixture
def busybox_tar(tmp_path: Path) -> Path:
    import peers

    return peers.busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"etc/ev-id": uuid.uuid4().hex.encode()})


@pytest.mark.peers
def test_network_and_volume_events_match_docker(strata: Strata, dockerd: Any, busybox_tar: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    net, vol, name, ref = f"evnet-{tag}", f"evvol-{tag}", f"evc-{tag}", f"parity-ev2-{tag}:1"
    out: dict[str, list[str]] = {}
    for who, tool in (("docker", dockerd.run), ("strata", strata)):
        _image(tool, busybox_tar, ref)
        start = str(time.time() - 0.5)
        net_id = tool("network", "create", net).stdout.strip()
        tool("volume", "create", vol)
        cid = tool("run", "-d", "--name", name, "--label", "app=x", "--network", net, "-v", f"{vol}:/data:ro",
                   "-v", "/anon", ref, "sleep", "100").stdout.strip()
        anon = tool("inspect", "--format", '{{range .Mounts}}{{if eq .Destination "/anon"}}{{.Name}}{{end}}{{end}}',
                    name).stdout.strip()
        tool("network", "disconnect", net, name)
        tool("network", "connect", net, name)
        tool("rm", "-f", "-v", name)
        tool("network", "rm", net)
        tool("volume", "rm", vol)
        tool("rmi", ref)
        lines = _events(tool, start, "type=network", "type=volume")
        subst = ((cid, "<CID>"), (net_id, "<NET>"), (anon, "<ANON>"), (tag, "<TAG>"))
        for old, new in subst:
            lines = [line.replace(old, new) for line in lines]
        out[who] = _unordered_runs(lines)
    assert out["strata"] == out["docker"]
    assert out["docker"][:2] == ['network create <NET> {"name":"evnet-<TAG>","type":"bridge"} ||',
                                 'volume create evvol-<TAG> {"driver":"local"} ||']
    assert ('volume mount evvol-<TAG> {"container":"<CID>","destination":"/data","driver":"local",'
            '"propagation":"","read/write":"false"} ||') in out["docker"]
    assert out["docker"].count(
        'network disconnect <NET> {"container":"<CID>","name":"evnet-<TAG>","type":"bridge"} ||') == 3


@pytest.mark.peers
def test_rename_and_health_events_match_docker(strata: Strata, dockerd: Any, busybox_tar: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    ref = f"parity-ev2h-{tag}:1"
    out: dict[str, list[str]] = {}
    for who, tool in (("docker", dockerd.run), ("strata", strata)):
        _image(tool, busybox_tar, ref)
        start = str(time.time() - 0.5)
        ok = tool("run", "-d", "--name", f"ok-{tag}", "--label", "k=v", "--health-cmd", "true",
                  "--health-interval", "1s", ref, "sleep", "100").stdout.strip()
        bad = tool("run", "-d", "--name", f"bad-{tag}", "--health-cmd", "false", "--health-interval", "1s",
                   "--health-retries", "1", ref, "sleep", "100").stdout.strip()
        ren = tool("create", "--name", f"old-{tag}", "--label", "k=v", ref).stdout.strip()
        tool("rename", f"old-{tag}", f"new-{tag}")
        _until_health(tool, {f"ok-{tag}": "healthy", f"bad-{tag}": "unhealthy"})
        tool("rm", "-f", f"ok-{tag}", f"bad-{tag}", f"new-{tag}")
        tool("rmi", ref)
        lines = _events(tool, start, "event=health_status", "event=rename")
        for old, new in ((ok, "<OK>"), (bad, "<BAD>"), (ren, "<REN>"), (tag, "<TAG>")):
            lines = [line.replace(old, new) for line in lines]
        out[who] = sorted(lines)  # the two probes' threads: either may judge first
    assert out["strata"] == out["docker"]
    assert out["docker"] == [
        'container health_status: healthy <OK> {"image":"parity-ev2h-<TAG>:1","k":"v","name":"ok-<TAG>"} '
        "health_status: healthy|<OK>|parity-ev2h-<TAG>:1",
        'container health_status: unhealthy <BAD> {"image":"parity-ev2h-<TAG>:1","name":"bad-<TAG>"} '
        "health_status: unhealthy|<BAD>|parity-ev2h-<TAG>:1",
        'container rename <REN> {"image":"parity-ev2h-<TAG>:1","k":"v","name":"new-<TAG>","oldName":"/old-<TAG>"} '
        "rename|<REN>|parity-ev2h-<TAG>:1",
    ]


@pytest.mark.peers
def test_inspect_without_size_prints_nil_as_docker(strata: Strata, dockerd: Any, busybox_tar: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    ref, name = f"parity-ev2s-{tag}:1", f"sz-{tag}"
    for tool in (dockerd.run, strata):
        _image(tool, busybox_tar, ref)
        tool("create", "--name", name, ref)
        try:
            assert tool("inspect", "--format", "{{.SizeRw}} {{.SizeRootFs}}", name).stdout == "<nil> <nil>\n"
            assert tool("container", "inspect", "--format", "{{.SizeRw}}", name).stdout == "<nil>\n"
            assert "SizeRw" not in json.loads(tool("inspect", "--format", "{{json .}}", name).stdout)
            sized = tool("inspect", "-s", "--format", "{{.SizeRw}} {{.SizeRootFs}}", name).stdout.split()
            assert [s.isdigit() for s in sized] == [True, True] and int(sized[1]) > 0
        finally:
            tool("rm", name)
            tool("rmi", ref)


def test_network_and_volume_messages_have_dockers_fields(tmp_path: Path) -> None:
    events.record_network(tmp_path, "connect", "n1", "net", "c1")
    events.record_volume(tmp_path, "mount", "v1", {"container": "c1", "read/write": "true", "destination": "/d",
                                                   "propagation": ""})
    net, vol = events.read_events(tmp_path)
    assert list(net) == ["Type", "Action", "Actor", "scope", "time", "timeNano"]  # no legacy status/id/from
    assert net["Actor"] == {"ID": "n1", "Attributes": {"container": "c1", "name": "net", "type": "bridge"}}
    assert list(vol["Actor"]["Attributes"]) == ["container", "destination", "driver", "propagation", "read/write"]
    events.record_container(tmp_path, "start", "c1", "/web", "img", {"z": "1", "a": "2"})
    assert list(list(events.read_events(tmp_path))[-1]["Actor"]["Attributes"]) == ["a", "image", "name", "z"]
