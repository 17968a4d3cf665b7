"""exec, the container events, ``ps``'s format methods, ``inspect -s`` and commit's image metadata side by
side with Docker 20.10: the same commands against a private dockerd and strata, outputs compared after the
tool names, IDs and Docker's ``Error response from daemon:`` prefix are levelled."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime

Run = Callable[..., subprocess.CompletedProcess[str]]


def _level(res: subprocess.CompletedProcess[str], tool: str) -> tuple[int, str, str]:
    def clean(text: str) -> str:
        text = re.sub(r"^(docker: )?(Error response from daemon: |Error: )", "", text, flags=re.M)
        return text.replace(f"{tool} ", "X ").replace(f"'{tool}", "'X").replace(f'"{tool}', '"X')

    return res.returncode, clean(res.stdout), clean(res.stderr)


@pytest.fixture
def pair(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str) -> Iterator[tuple[str, Run, Run]]:
    """A running container of the same name in both: ``(name, strata, docker)``."""
    name = f"parity-x-{uuid.uuid4().hex[:8]}"
    labels = ["-l", "app=a<b>&c", "-l", "tier=web"]
    strata("run", "-d", "--name", name, *labels, busybox_image, "sleep", "1000")
    dockerd.run("run", "-d", "--name", name, *labels, docker_busybox, "sleep", "1000")
    try:
        yield name, strata, dockerd.run
    finally:
        strata("rm", "-f", name, check=False)
        dockerd.run("rm", "-f", name, check=False)


def _same(pair: tuple[str, Run, Run], *args: str, input: str | None = None) -> tuple[int, str, str]:
    _, strata, docker = pair
    ours = _level(strata(*args, check=False, input=input), "strata")
    theirs = _level(docker(*args, check=False, input=input), "docker")
    assert ours == theirs, args
    return ours


def test_exec_errors_and_flags_match_docker(pair: tuple[str, Run, Run], tmp_path: Path) -> None:
    name = pair[0]
    env_file = tmp_path / "env"
    env_file.write_text("A=1\n# comment\n\nSTRATA_PARITY_UNSET\nHOME\nC=x y\n")  # HOME: the client's own
    # a binary that is not there: Docker's daemon writes the runtime's words into the exec's stream
    rc, out, err = _same(pair, "exec", name, "nosuch")
    assert rc == 126 and out.startswith("OCI runtime exec failed: exec failed:") and err == ""
    _same(pair, "exec", name, "--", "echo", "hi")  # the "--" is the command, as Docker's CLI passes it
    _same(pair, "exec", "-u", "nosuchuser", name, "true")
    _same(pair, "exec", "-w", "relative", name, "pwd")
    _same(pair, "exec", "-w", "/nonexistent", name, "pwd")
    _same(pair, "exec", "-w", "/tmp", name, "pwd")
    rc, out, _ = _same(pair, "exec", "--env-file", str(env_file), "-e", "LOGNAME_PARITY_UNSET", "-e", "A=2", name,
                       "sh", "-c", "echo $A/$C/$HOME/${STRATA_PARITY_UNSET-unset}/${LOGNAME_PARITY_UNSET-unset}")
    assert out == f"2/x y/{os.environ['HOME']}/unset/unset\n"
    rc, _, err = _same(pair, "exec", "-e", "=x", name, "true")
    assert rc == 125 and 'invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x' in err
    rc, _, err = _same(pair, "exec", "--env-file", str(tmp_path / "missing"), name, "true")
    assert rc == 1 and err.endswith("missing: no such file or directory\n")
    rc, _, err = _same(pair, "exec", name)
    assert rc == 1 and err.startswith('"X exec" requires at least 2 arguments.')
    rc, _, err = _same(pair, "exec", "-d", name, "nosuch")  # detached: the daemon's error, exit 1
    assert rc == 1 and "executable file not found in $PATH" in err
    _same(pair, "exec", name, "sh", "-c", "echo out; echo err >&2; exit 3")


def test_exec_privileged_gets_every_capability(strata: Strata, busybox_image: str) -> None:
    """Docker's exec --privileged asks for every capability (here Docker's own fails: the machine's
    bounding set lacks one, so runc cannot raise it); strata asks for those it holds itself."""
    strata("run", "-d", "--name", "priv", busybox_image, "sleep", "1000")
    mine = next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("CapBnd:"))
    status = strata("exec", "--privileged", "priv", "cat", "/proc/self/status").stdout
    caps = dict(line.split(":\t") for line in status.splitlines() if line.startswith("Cap"))
    assert caps["CapEff"] == caps["CapBnd"] == mine
    plain = strata("exec", "priv", "cat", "/proc/self/status").stdout
    assert f"CapEff:\t{mine}" not in plain


def test_container_events_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                       docker_busybox: str) -> None:
    name = f"parity-ev-{uuid.uuid4().hex[:8]}"
    fmt = ("{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.app}} {{.Actor.Attributes.signal}}"
           " {{.Actor.Attributes.exitCode}} {{.Status}} {{.From}}")
    out = {}
    for tool, run, image in (("strata", strata, busybox_image), ("docker", dockerd.run, docker_busybox)):
        start = str(time.time() - 0.5)
        run("run", "-d", "--name", name, "-l", "app=x", image, "sleep", "1000")
        run("exec", name, "true")
        run("exec", name, "nosuch", check=False)
        run("pause", name)
        run("unpause", name)
        run("restart", "-t", "1", name)
        run("stop", "-t", "1", name)
        run("commit", name, f"{name}:1")
        run("rm", name)
        run("rmi", f"{name}:1")
        run("run", "--rm", "--name", name, image, "true")  # attached: an attach event, removed at the end
        until = str(time.time() + 0.2)
        time.sleep(0.3)
        res = run("events", "--since", start, "--until", until, "--filter", "type=container", "--filter",
                  f"container={name}", "--format", fmt)
        out[tool] = [line.replace(image, "<image>").rstrip() for line in res.stdout.splitlines()]
    assert out["strata"] == out["docker"]
    assert [line.split()[1] for line in out["docker"]][:2] == ["create", "start"]


def test_ps_format_methods_match_docker(pair: tuple[str, Run, Run]) -> None:
    name = pair[0]
    fmt = '{{.Label "app"}}|{{.Label "nope"}}|{{.Mounts}}|{{.LocalVolumes}}|{{.Networks}}|{{.Size}}|{{.State}}'
    _same(pair, "ps", "--filter", f"name={name}", "--format", fmt)
    _same(pair, "ps", "--filter", f"name={name}", "--format", "table {{.Label \"app\"}}\t{{.Names}}")
    _same(pair, "ps", "--filter", f"name={name}", "--format", "{{.Nope}}")
    _same(pair, "ps", "--filter", "name=parity-none", "--format", "{{.Nope}}")  # checked with nothing to list
    _same(pair, "ps", "--format", "{{.Nope")
    # .Labels is a Go map in Docker: its order differs run to run, so compare the labels as a set
    rows = [run("ps", "--filter", f"name={name}", "--format", "{{json .Labels}} {{json .Names}}").stdout
            for run in pair[1:]]
    (ours_labels, ours_name), (their_labels, their_name) = (row.rsplit(" ", 1) for row in rows)
    assert ours_name == their_name
    assert set(json.loads(ours_labels).split(",")) == set(json.loads(their_labels).split(","))
    ours, theirs = (json.loads(run("ps", "--filter", f"name={name}", "--format", "{{json .}}").stdout)
                    for run in pair[1:])
    assert sorted(ours) == sorted(theirs)
    assert set(ours["Labels"].split(",")) == set(theirs["Labels"].split(","))  # a Go map: any order
    # Go's json.Marshal of the row (the context's MarshalJSON) escapes <, > and &
    raw = pair[1]("ps", "--filter", f"name={name}", "--format", "{{json .}}").stdout
    assert "a\\u003cb\\u003e\\u0026c" in raw and "<" not in raw


def test_ps_shows_the_image_id_once_the_tag_moves(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                                   docker_busybox: str) -> None:
    name, tag = f"parity-t-{uuid.uuid4().hex[:8]}", f"parity-t-{uuid.uuid4().hex[:8]}:1"
    rows = {}
    for tool, run, image in (("strata", strata, busybox_image), ("docker", dockerd.run, docker_busybox)):
        run("tag", image, tag)
        run("create", "--name", name, tag, "true")
        image_id = run("inspect", "--format", "{{.Id}}", image).stdout.strip()
        before = run("ps", "-a", "--filter", f"name={name}", "--format", "{{.Image}}").stdout
        run("rmi", tag)
        after = run("ps", "-a", "--filter", f"name={name}", "--format", "{{.Image}}").stdout
        full = run("ps", "-a", "--no-trunc", "--filter", f"name={name}", "--format", "{{.Image}}").stdout
        run("rm", name)
        rows[tool] = [before, after.replace(image_id[7:19], "<id>"), full.replace(image_id, "<ID>")]
    assert rows["strata"] == rows["docker"] == [f"{tag}\n", "<id>\n", "<ID>\n"]


def test_inspect_size_matches_docker(pair: tuple[str, Run, Run]) -> None:
    name = pair[0]
    for run in pair[1:]:
        run("exec", name, "sh", "-c", "echo hello > /f")
    _same(pair, "inspect", "-s", "--format", "{{.SizeRw}}", name)
    _same(pair, "container", "inspect", "-s", "--format", "{{.SizeRw}}", name)
    docs = [json.loads(run("inspect", "-s", name).stdout)[0] for run in pair[1:]]
    for doc in docs:
        keys = list(doc)
        assert keys[keys.index("GraphDriver") + 1:keys.index("GraphDriver") + 3] == ["SizeRw", "SizeRootFs"]
        assert doc["SizeRootFs"] > doc["SizeRw"] == 6
    assert "SizeRw" not in json.loads(pair[1]("inspect", name).stdout)[0]


def test_commit_fills_docker_version_and_last_tag_time(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                                        docker_busybox: str) -> None:
    name = f"parity-c-{uuid.uuid4().hex[:8]}"
    got = {}
    for tool, run, image in (("strata", strata, busybox_image), ("docker", dockerd.run, docker_busybox)):
        run("create", "--name", name, image, "true")
        run("commit", name, f"{name}:1")
        untagged = run("commit", name).stdout.strip()
        tagged = json.loads(run("inspect", f"{name}:1").stdout)[0]
        bare = json.loads(run("inspect", untagged).stdout)[0]
        run("tag", f"{name}:1", f"{name}:2")
        retagged = json.loads(run("inspect", f"{name}:1").stdout)[0]
        got[tool] = [bool(tagged["DockerVersion"]), tagged["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z",
                     bare["Metadata"]["LastTagTime"],
                     retagged["Metadata"]["LastTagTime"] > tagged["Metadata"]["LastTagTime"]]
        run("rm", name)
        run("rmi", f"{name}:1", f"{name}:2", untagged)
    assert got["strata"] == got["docker"] == [True, True, "0001-01-01T00:00:00Z", True]
