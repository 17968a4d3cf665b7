"""Found by the user's-eye audit of issue 15, third round, side by side with Docker 20.10: ``volume ls`` and
``network ls`` rows are Docker's typed contexts (``{{.Label "k"}}`` worked for neither, an unknown field
printed ``<no value>``, ``{{json .}}`` of a network kept insertion order); ``--format`` of its own wins over
``-q`` (images, ps, history, volume ls, network ls printed IDs); ``network connect|disconnect`` of a missing
network (``network X not found``); ``network prune --filter bogus=1`` (refused); ``stats`` names its
context ``*container.statsContext``."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime


def _answer(res: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    err = re.sub(r"^(docker: )?(Error response from daemon: |Error: )", "", res.stderr.strip()).rstrip(".")
    out = re.sub(r'"(CreatedAt|ID|Mountpoint)":"[^"]*"', r'"\1":"X"', res.stdout)
    return res.returncode, out, err


@pytest.fixture
def named(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str) -> Iterator[str]:
    name = f"fmt{uuid.uuid4().hex[:8]}"
    for run, image in ((strata, busybox_image), (dockerd.run, docker_busybox)):
        run("volume", "create", "--label", "com.x-y_z=1", name)
        run("network", "create", "--label", "com.x-y_z=2", name)
        run("create", "--name", name, "--network", name, "-v", f"{name}:/v", image, "true")
    yield name
    for run in (strata, dockerd.run):
        run("rm", "-f", name, check=False)
        run("volume", "rm", name, check=False)
        run("network", "rm", name, check=False)


@pytest.mark.parametrize("args", [
    ("volume", "ls", "-f", "name={n}", "--format", '{{.Label "com.x-y_z"}}|{{json .}}'),
    ("volume", "ls", "-f", "name={n}", "--format", "table {{.Name}}\t{{.Label \"com.x-y_z\"}}"),
    ("volume", "ls", "-f", "name={n}", "--format", "{{.Bogus}}"),
    ("network", "ls", "-f", "name={n}", "--format", '{{.Label "com.x-y_z"}}|{{json .}}'),
    ("network", "ls", "-f", "name={n}", "--format", "{{.Bogus}}"),
    ("volume", "ls", "-q", "-f", "name={n}", "--format", "x{{.Name}}"),
    ("network", "ls", "-q", "-f", "name={n}", "--format", "x{{.Name}}"),
    ("ps", "-aq", "-f", "name={n}", "--format", "x{{.Names}}"),
    ("ps", "-aq", "-f", "name={n}", "--format", "table"),
    ("stats", "--no-stream", "-a", "--format", "{{.Bogus}}"),
    ("network", "prune", "-f", "--filter", "bogus=1"),
])
def test_listing_formats_as_docker(strata: Strata, dockerd: Dockerd, named: str, args: tuple[str, ...]) -> None:
    argv = [a.replace("{n}", named) for a in args]
    ours, theirs = _answer(strata(*argv, check=False)), _answer(dockerd.run(*argv, check=False))
    if argv[:2] == ["ps", "-aq"] and "table" in argv:
        assert (ours[0], len(ours[1].split())) == (theirs[0], len(theirs[1].split())) == (0, 1)  # an ID each
        return
    assert ours == theirs


def test_images_and_history_format_wins_over_quiet(strata: Strata, busybox_image: str) -> None:
    assert strata("images", "-q", "--format", "x{{.Repository}}", busybox_image).stdout == "xubuntu\n"
    assert strata("history", "-q", "--format", "x{{.CreatedBy}}", busybox_image).stdout.startswith("x")


def test_connect_to_a_missing_network_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                                docker_busybox: str, named: str) -> None:
    running = f"{named}-up"
    strata("run", "-d", "--name", running, "--network", named, busybox_image, "sleep", "1000")
    dockerd.run("run", "-d", "--name", running, "--network", named, docker_busybox, "sleep", "1000")
    try:
        for verb in ("connect", "disconnect"):
            argv = ("network", verb, f"nosuch{named}", running)
            ours, theirs = _answer(strata(*argv, check=False)), _answer(dockerd.run(*argv, check=False))
            assert ours == theirs == (1, "", f"network nosuch{named} not found")
    finally:
        strata("rm", "-f", running, check=False)
        dockerd.run("rm", "-f", running, check=False)
