"""``top`` and ``rename`` side by side with Docker 20.10: the same commands against a private dockerd and
strata, exit codes, output columns and errors compared (container IDs and pids levelled)."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime


def _norm(res: subprocess.CompletedProcess[str], ids: list[str]) -> tuple[int, str]:
    lines = [re.sub(r"^(Error response from daemon: |Error: )", "", line) for line in res.stderr.strip().splitlines()]
    text = "\n".join(lines).replace("'strata ", "'X ").replace('"strata ', '"X ')
    text = text.replace("'docker ", "'X ").replace('"docker ', '"X ').replace("strata ", "X ").replace("docker ", "X ")
    for i, cid in enumerate(ids):
        text = text.replace(cid, f"<ID{i // 2}>")  # strata's and Docker's IDs of one container
    return res.returncode, text


def _table(out: str, keep: tuple[str, ...]) -> list[list[str]]:
    """The columns named in ``keep`` of a ``top`` table (times and pids differ between the two)."""
    lines = out.splitlines()
    titles = lines[0].split()
    at = [titles.index(k) for k in keep]
    rows = [[titles[i] for i in at]]
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        rows.append([fields[i] for i in at])
    return rows


@pytest.fixture
def pair(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str):  # type: ignore[no-untyped-def]
    name = f"parity-top-{uuid.uuid4().hex[:8]}"
    ids = [strata("run", "-d", "--name", name, busybox_image, "sleep", "1000").stdout.strip(),
           dockerd.run("run", "-d", "--name", name, docker_busybox, "sleep", "1000").stdout.strip()]
    try:
        yield name, ids
    finally:
        dockerd.run("rm", "-f", name, f"{name}-2", f"{name}-3", check=False)


def test_top_matches_docker(strata: Strata, dockerd: Dockerd, pair: tuple[str, list[str]]) -> None:
    name, ids = pair
    ours, theirs = strata("top", name), dockerd.run("top", name)
    assert ours.stdout.splitlines()[0] == theirs.stdout.splitlines()[0]  # the -ef header, Docker's widths
    assert _table(ours.stdout, ("UID", "CMD")) == _table(theirs.stdout, ("UID", "CMD")) == \
        [["UID", "CMD"], ["root", "sleep 1000"]]
    ours, theirs = strata("top", name, "-o", "pid,comm"), dockerd.run("top", name, "-o", "pid,comm")
    assert _table(ours.stdout, ("COMMAND",)) == _table(theirs.stdout, ("COMMAND",)) == [["COMMAND"], ["sleep"]]
    ours, theirs = strata("top", name, "aux"), dockerd.run("top", name, "aux")
    assert ours.stdout.splitlines()[0] == theirs.stdout.splitlines()[0]
    assert _table(ours.stdout, ("USER", "COMMAND")) == _table(theirs.stdout, ("USER", "COMMAND"))
    ours, theirs = strata("top", name, "-q", "1"), dockerd.run("top", name, "-q", "1")  # pid 1 of the host
    assert ours.stdout == theirs.stdout
    for args in (["-o", "pid=PID"], ["-o", "comm,user=", "PIDX"], ["-o", "user"], ["-bogus"]):
        ours, theirs = strata("top", name, *args, check=False), dockerd.run("top", name, *args, check=False)
        assert _norm(ours, ids)[0] == _norm(theirs, ids)[0], args
        if ours.returncode:
            assert _norm(ours, ids) == _norm(theirs, ids), args
        else:
            assert ours.stdout.splitlines()[0] == theirs.stdout.splitlines()[0], args
    strata("stop", "-t", "0", name)
    dockerd.run("stop", "-t", "0", name)
    for args in ([name], ["parity-top-nope"], []):
        ours, theirs = strata("top", *args, check=False), dockerd.run("top", *args, check=False)
        assert _norm(ours, ids)[0] == _norm(theirs, ids)[0], args
        assert _norm(ours, ids)[1].split("\n")[:2] == _norm(theirs, ids)[1].split("\n")[:2], args


def test_rename_matches_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                               pair: tuple[str, list[str]]) -> None:
    name, ids = pair
    ids += [strata("create", "--name", f"{name}-2", busybox_image).stdout.strip(),
            dockerd.run("create", "--name", f"{name}-2", docker_busybox).stdout.strip()]
    for args in ([name, name], [name, f"{name}-2"], ["parity-top-nope", "x"], [name, "bad@"], [name, " "],
                 [name], [name, f"/{name}-3"], [f"{name}-3", name]):
        ours, theirs = strata("rename", *args, check=False), dockerd.run("rename", *args, check=False)
        assert _norm(ours, ids) == _norm(theirs, ids), args
        assert ours.stdout == theirs.stdout
    fmt = "{{.Names}}"
    assert sorted(strata("ps", "-a", "--format", fmt, "--filter", f"name={name}").stdout.split()) == \
        sorted(dockerd.run("ps", "-a", "--format", fmt, "--filter", f"name={name}").stdout.split()) == \
        [name, f"{name}-2"]
    assert strata("inspect", "-f", "{{.Name}}", name).stdout == dockerd.run("inspect", "-f", "{{.Name}}", name).stdout
