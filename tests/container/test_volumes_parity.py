"""Volumes side by side with Docker 20.10: the same commands, the same outputs and errors (the text after
Docker's ``Error response from daemon: ``/``docker: `` prefixes against strata's ``Error: ``)."""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime


def _error(res: subprocess.CompletedProcess[str]) -> str:
    text = res.stderr.strip().splitlines()[0] if res.stderr.strip() else ""
    text = re.sub(r"^(docker: )?(Error response from daemon: |Error: )?", "", text)
    return text.rstrip(".")


def _both(strata: Strata, dockerd: Dockerd, *args: str) -> tuple[subprocess.CompletedProcess[str], ...]:
    return strata(*args, check=False), dockerd.run(*args, check=False)


def test_volume_commands_match_docker(strata: Strata, dockerd: Dockerd) -> None:
    tag = uuid.uuid4().hex[:8]  # the session's dockerd is shared: names no other test's volume contains
    names = (f"parity-a{tag}", f"parity-b{tag}")
    try:
        for args in (("volume", "create", names[0]), ("volume", "create", "--label", "k=v", names[1]),
                     ("volume", "create", names[0])):
            ours, theirs = _both(strata, dockerd, *args)
            assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
        ours, theirs = _both(strata, dockerd, "volume", "ls", "-f", f"name={tag}", "--format",
                             "{{.Driver}} {{.Name}} {{.Scope}} {{.Labels}}")
        assert ours.stdout == theirs.stdout == f"local {names[0]} local \nlocal {names[1]} local k=v\n"
        ours, theirs = _both(strata, dockerd, "volume", "inspect", *names)
        docs, expected = json.loads(ours.stdout), json.loads(theirs.stdout)
        for doc, want in zip(docs, expected, strict=True):
            assert list(doc) == list(want)
            assert {k: v for k, v in doc.items() if k not in ("CreatedAt", "Mountpoint")} == \
                {k: v for k, v in want.items() if k not in ("CreatedAt", "Mountpoint")}
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", doc["CreatedAt"])
        for args in (("volume", "inspect", "parity-nope"), ("volume", "rm", "parity-nope"),
                     ("volume", "create", "bad@name")):
            ours, theirs = _both(strata, dockerd, *args)
            assert (ours.returncode, _error(ours)) == (theirs.returncode, _error(theirs)), args
    finally:
        for n in names:
            strata("volume", "rm", n, check=False)
            dockerd.run("volume", "rm", n, check=False)


@pytest.mark.parametrize("flags", [
    ["-v", "/tmp:/"],
    ["-v", "/tmp:relative"],
    ["-v", "a:b:c:d"],
    ["-v", "/tmp:/x:bogus"],
    ["-v", "bad@:/x"],
    ["--mount", "type=bind,source=/nonexistent-strata-parity,target=/x"],
    ["--mount", "type=nfs,target=/x"],
    ["--restart", "sometimes"],
    ["--restart", "always:x"],
    ["--restart", "always:3", "--no-rm"],
    ["--restart", "sometimes", "--no-rm"],
])
def test_bad_mounts_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                                 flags: list[str]) -> None:
    rm = [] if "--no-rm" in flags else ["--rm"]
    flags = [f for f in flags if f != "--no-rm"]
    ours = strata("run", *rm, *flags, busybox_image, "true", check=False)
    theirs = dockerd.run("run", *rm, *flags, docker_busybox, "true", check=False)
    assert (ours.returncode, _error(ours)) == (theirs.returncode, _error(theirs))


def test_mounts_and_in_use_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                        docker_busybox: str, tmp_path: object) -> None:
    flags = ["-v", "parity-u:/data", "-v", "/anon", "-v", "/tmp:/host:ro", "--tmpfs", "/t",
             "--mount", "type=tmpfs,target=/m", "--read-only", "--restart", "on-failure:2"]
    ours_id = strata("create", "--name", "parity-c", *flags, busybox_image, "true").stdout.strip()
    theirs_id = dockerd.run("create", "--name", "parity-c", *flags, docker_busybox, "true").stdout.strip()
    try:
        fmt = "{{json .Mounts}}"
        ours = json.loads(strata("inspect", "-f", fmt, "parity-c").stdout)
        theirs = json.loads(dockerd.run("inspect", "-f", fmt, "parity-c").stdout)

        def shape(mounts: list[dict[str, object]]) -> list[dict[str, object]]:
            out = []
            for m in sorted(mounts, key=lambda m: str(m["Destination"])):
                m = dict(m)
                if m.get("Name") and len(str(m["Name"])) == 64:
                    m["Name"] = "<anonymous>"
                if m["Type"] == "volume":
                    m["Source"] = "<volume>"
                if m["Type"] == "bind":  # Docker's daemon makes it rslave under a shared root, else rprivate
                    m["Propagation"] = "<default>"
                out.append(m)
            return out

        assert shape(ours) == shape(theirs)
        assert [list(m) for m in shape(ours)] == [list(m) for m in shape(theirs)]  # keys in Docker's order
        fmt = "{{json .HostConfig.RestartPolicy}} {{.HostConfig.ReadonlyRootfs}} {{json .HostConfig.Tmpfs}} " \
              "{{json .HostConfig.Mounts}}"
        assert strata("inspect", "-f", fmt, "parity-c").stdout == dockerd.run("inspect", "-f", fmt, "parity-c").stdout
        # Docker's CLI gathers -v in a Go map: its Binds come in any order from one run to the next
        fmt = "{{json .HostConfig.Binds}}"
        assert sorted(json.loads(strata("inspect", "-f", fmt, "parity-c").stdout)) == \
            sorted(json.loads(dockerd.run("inspect", "-f", fmt, "parity-c").stdout))
        ours_rm, theirs_rm = _both(strata, dockerd, "volume", "rm", "parity-u")
        assert ours_rm.returncode == theirs_rm.returncode
        assert _error(ours_rm).replace(ours_id, "ID") == _error(theirs_rm).replace(theirs_id, "ID")
    finally:
        strata("rm", "-v", "parity-c", check=False)
        dockerd.run("rm", "-v", "parity-c", check=False)
        strata("volume", "rm", "parity-u", check=False)
        dockerd.run("volume", "rm", "parity-u", check=False)


def test_volume_prune_matches_docker(strata: Strata, dockerd: Dockerd) -> None:
    for run in (strata, dockerd.run):
        run("volume", "create", "--label", "parity=prune", "parity-p")
    mountpoint = json.loads(dockerd.run("volume", "inspect", "parity-p").stdout)[0]["Mountpoint"]
    for data in (strata.root / "volumes" / "parity-p" / "_data", mountpoint):
        with open(f"{data}/blob", "wb") as f:
            f.write(b"x" * 1234567)
    ours = strata("volume", "prune", "-f", "--filter", "label=parity=prune")
    theirs = dockerd.run("volume", "prune", "-f", "--filter", "label=parity=prune")
    assert ours.stdout == theirs.stdout
    assert "Total reclaimed space: 1.235MB" in ours.stdout
