"""``strata events`` from the store's journal (``strata.events``): Docker's line and JSON formats, two
processes appending at once, trimming under a follower, filters, ``--since``/``--until`` and the
follow mode, and the image events side by side with Docker 20.10's."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

from strata import events


def test_default_line_is_dockers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Docker 20.10's CLI printed, for this message: (recorded from a private dockerd)
    docker = ("2026-11-30T20:38:24.680518927Z container die c1abf8dbc8622df2d8c703bdc8a81d041d7f542a61c072142cd2ea3003"
              "9d7dba (app=a<b>&c, exitCode=137, image=bb, name=c1, x=y)")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    msg = {"status": "die", "id": "c1abf8dbc8622df2d8c703bdc8a81d041d7f542a61c072142cd2ea30039d7dba", "from": "bb",
           "Type": "container", "Action": "die",
           "Actor": {"ID": "c1abf8dbc8622df2d8c703bdc8a81d041d7f542a61c072142cd2ea30039d7dba",
                     "Attributes": {"x": "y", "app": "a<b>&c", "image": "bb", "name": "c1", "exitCode": "137"}},
           "scope": "local", "time": 1796071104, "timeNano": 1796071104680518927}
    assert events.format_line(msg) == docker
    prune = {"Type": "network", "Action": "prune", "Actor": {"ID": "", "Attributes": {"reclaimed": "0"}},
             "timeNano": 1796071136676882274}
    assert events.format_line(prune) == "2026-11-30T20:38:56.676882274Z network prune  (reclaimed=0)"


def test_records_dockers_message_fields(tmp_path: Path) -> None:
    events.record_container(tmp_path, "start", "abc", "/web", "bb", {"app": "x"})
    events.record_image(tmp_path, "untag", "sha256:1")
    events.record(tmp_path, "container", "prune", "", {"reclaimed": "0"})
    got = list(events.read_events(tmp_path))
    assert [list(m) for m in got] == [
        ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"],
        ["status", "id", "Type", "Action", "Actor", "scope", "time", "timeNano"],
        ["status", "Type", "Action", "Actor", "scope", "time", "timeNano"],  # no actor: no "id", as Docker's
    ]
    assert got[0]["Actor"] == {"ID": "abc", "Attributes": {"app": "x", "image": "bb", "name": "web"}}
    assert got[1]["Actor"]["Attributes"] == {"name": "sha256:1"}
    assert got[0]["time"] == got[0]["timeNano"] // 1_000_000_000
    assert (tmp_path / events.JOURNAL).stat().st_mode & 0o777 == 0o600


_WRITER = """
import sys
from pathlib import Path
from strata import events
root, tag = Path(sys.argv[1]), sys.argv[2]
for i in range(int(sys.argv[3])):
    events.record_container(root, "exec_start: " + "x" * 300, tag, f"{tag}-{i}", "img", {"n": str(i)})
"""


def test_two_processes_append_whole_lines(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(events.__file__).parents[1]))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), tag, "400"], env=env)
             for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    lines = (tmp_path / events.JOURNAL).read_bytes().splitlines()
    assert len(lines) == 800
    msgs = [json.loads(line) for line in lines]  # every line whole: none interleaved with another
    for tag in ("a", "b"):
        assert [m["Actor"]["Attributes"]["n"] for m in msgs if m["id"] == tag] == [str(i) for i in range(400)]


def test_trim_keeps_the_newest_and_a_follower_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "MAX_BYTES", 20_000)
    monkeypatch.setattr(events, "KEEP", 10)
    follower = events.Follower(tmp_path)
    seen: list[str] = []
    for i in range(200):
        events.record_image(tmp_path, "tag", f"sha256:{i}", f"img:{i}")
        seen += [m["id"] for m in follower.poll()]
    kept = [m["id"] for m in events.read_events(tmp_path)]
    assert (tmp_path / events.JOURNAL).stat().st_size <= 20_000 and kept[-1] == "sha256:199"
    assert len(kept) < 200
    assert seen == [f"sha256:{i}" for i in range(200)]  # across every trim: each once, in order


def _events(strata: Strata, since: str, *args: str) -> list[str]:
    fmt = "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}"
    res = strata("events", "--since", since, "--until", str(time.time()), "--format", fmt, *args, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_filters_since_until_and_errors(cli: Strata, rootfs_tar: Path) -> None:
    start = str(time.time())
    image_id = cli("import", str(rootfs_tar), "ev:1").stdout.strip()
    cli("tag", "ev:1", "ev:2")
    middle = str(time.time())
    cli("rmi", "ev:1", "ev:2")
    assert _events(cli, start) == [
        f"image tag {image_id} ev:1", f"image import {image_id} {image_id}", f"image tag {image_id} ev:2",
        f"image untag {image_id} {image_id}", f"image untag {image_id} {image_id}",
        f"image delete {image_id} {image_id}",
    ]
    assert _events(cli, middle) == [f"image untag {image_id} {image_id}"] * 2 + [f"image delete {image_id} {image_id}"]
    assert _events(cli, start, "--filter", "event=tag") == [f"image tag {image_id} ev:1", f"image tag {image_id} ev:2"]
    assert _events(cli, start, "-f", "image=ev:2") == [f"image tag {image_id} ev:2"]
    assert _events(cli, start, "-f", "image=ev") == [f"image tag {image_id} ev:1", f"image tag {image_id} ev:2"]
    assert _events(cli, start, "-f", "type=container") == []
    assert _events(cli, start, "-f", "event=untag", "-f", "event=delete", "-f", "type=image")[-1].startswith(
        "image delete")
    res = cli("events", "--since", "xyz", "--until", "0s", check=False)
    assert (res.returncode, res.stderr) == (1, 'Error: failed to parse value as time or duration: "xyz"\n')
    res = cli("events", "--since", "0s", "--until", "1h", check=False)
    assert res.returncode == 1 and "cannot be after `until` time" in res.stderr
    res = cli("events", "--filter", "type", "--until", "0s", check=False)
    assert res.returncode == 125 and "bad format of filter (expected name=value)" in res.stderr
    res = cli("events", "--since", start, "--until", str(time.time()), "--format", "{{json .}}")
    first = json.loads(res.stdout.splitlines()[0])
    assert list(first) == ["status", "id", "Type", "Action", "Actor", "scope", "time", "timeNano"]


def _ctrl_c_as_at_a_terminal() -> None:
    """SIGINT's default action in the child, as a shell gives a foreground command (a suite started in the
    background of a non-interactive shell inherits SIGINT ignored, and so would strata)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_follows_until_interrupted(strata: Strata, cli: Strata, rootfs_tar: Path, root: Path) -> None:
    cli("import", str(rootfs_tar), "evf:1")
    old = cli("events", "--since", "1h", "--until", "0s").stdout.splitlines()
    env = dict(os.environ, STRATA_ROOT=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "strata", "events", "--filter", "type=image"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_at_a_terminal)
    try:
        assert proc.stdout is not None
        time.sleep(1.0)  # without --since nothing of the past is shown: only what happens now
        # a tag made before the follower has started (a slow start on a loaded machine) is never shown, as
        # in Docker: tag again until one is
        tags = 1
        while True:
            tags += 1
            cli("tag", "evf:1", f"evf:{tags}")
            if select.select([proc.stdout], [], [], 2.0)[0]:
                break
            assert tags < 30, "the follower showed none of the new tags"
        line = proc.stdout.readline()
        assert " image tag sha256:" in line
        assert line.rstrip().endswith(tuple(f"(name=evf:{n})" for n in range(2, tags + 1))), line
        assert line.rstrip() not in old
    finally:
        proc.send_signal(2)  # Ctrl-C
        proc.communicate(timeout=30)
    assert proc.returncode == 130


def test_until_in_the_future_waits_for_it(cli: Strata, rootfs_tar: Path, root: Path) -> None:
    cli("import", str(rootfs_tar), "evu:1")
    env = dict(os.environ, STRATA_ROOT=str(root))
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "strata", "events", "--until", str(time.time() + 6), "--filter", "event=tag"],
                            env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(3)  # the follower's own start first (it shows only what comes after it: slow on a loaded machine)
    cli("tag", "evu:1", "evu:2")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and time.monotonic() - t0 >= 6.0
    assert out.rstrip().endswith("(name=evu:2)")


@pytest.mark.peers
def test_image_events_match_docker(strata: Strata, dockerd: Any, tmp_path: Path) -> None:
    import peers

    tar = peers.busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"etc/ev-id": uuid.uuid4().hex.encode()})
    repo = f"parity-ev-{uuid.uuid4().hex[:8]}"
    out: dict[str, list[str]] = {}
    for name, tool in (("docker", dockerd.run), ("strata", strata)):
        start = str(time.time() - 0.5)
        image_id = tool("import", str(tar), f"{repo}:1").stdout.strip()
        tool("tag", f"{repo}:1", f"{repo}:2")
        tool("save", "-o", str(tmp_path / f"{name}.tar"), f"{repo}:2")
        tool("rmi", f"{repo}:1", f"{repo}:2")
        tool("load", "-i", str(tmp_path / f"{name}.tar"))
        tool("rmi", f"{repo}:2")
        fmt = "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Status}} {{.ID}} {{.Scope}}"
        # an explicit time: Docker's "0s" counts whole seconds (the events of this second would be cut)
        until = str(time.time() + 0.2)
        time.sleep(0.3)
        res = tool("events", "--since", start, "--until", until, "--filter", f"image={image_id}", "--format", fmt)
        out[name] = [line.replace(image_id, "<ID>") for line in res.stdout.splitlines()]
    assert out["strata"] == out["docker"]
    assert out["docker"][0] == f"image tag <ID> {repo}:1 tag <ID> local"


@pytest.mark.peers
def test_push_and_pull_events_match_docker(strata: Strata, dockerd: Any, distribution_registry: Any,
                                           tmp_path: Path) -> None:
    import peers

    tar = peers.busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"etc/ev-id": uuid.uuid4().hex.encode()})
    out: dict[str, list[str]] = {}
    for name, tool in (("docker", dockerd.run), ("strata", strata)):
        repo = f"{distribution_registry.host}/parity-ev-{name}/img"
        start = str(time.time() - 0.5)
        tool("import", str(tar), f"{repo}:1")
        tool("push", f"{repo}:1")
        tool("rmi", f"{repo}:1")
        tool("pull", "-q", f"{repo}:1")
        tool("rmi", f"{repo}:1")
        until = str(time.time() + 0.2)
        time.sleep(0.3)
        fmt = "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.ID}}"
        res = tool("events", "--since", start, "--until", until, "--filter", "event=push", "--filter", "event=pull",
                   "--format", fmt)
        out[name] = [line.replace(repo, "<repo>") for line in res.stdout.splitlines()]
    assert out["strata"] == out["docker"] == ["push <repo>:1 <repo> <repo>:1", "pull <repo>:1 <repo> <repo>:1"]


def test_image_prune_records_deletes_then_prune(cli: Strata, rootfs_tar: Path) -> None:
    start = str(time.time())
    dangling = cli("import", str(rootfs_tar)).stdout.strip()
    cli("image", "prune", "-f")
    assert _events(cli, start) == [f"image import {dangling} {dangling}", f"image delete {dangling} {dangling}",
                                   "image prune  <no value>"]  # Go prints a missing map key so
    res = cli("events", "--since", start, "--until", str(time.time()), "--filter", "event=prune", "--format",
              "{{json .Actor}}")
    assert json.loads(res.stdout)["Attributes"]["reclaimed"].isdigit()


def test_container_prune_records_its_event(cli: Strata) -> None:
    start = str(time.time())
    cli("container", "prune", "-f")
    res = cli("events", "--since", start, "--until", str(time.time()), "--format", "{{json .}}")
    msg = json.loads(res.stdout)
    assert (msg["Type"], msg["Action"], msg["Actor"], "id" in msg) == (
        "container", "prune", {"ID": "", "Attributes": {"reclaimed": "0"}}, False)
