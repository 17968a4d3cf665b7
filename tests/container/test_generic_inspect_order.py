"""``inspect NAME`` looks through containers first, then images, networks and volumes, as the Docker 20.10
CLI's inspect does: a name that is both a container and an image (``NAME:latest``) is the container.
``-s`` sizes only containers; for any other kind the client warns ``WARNING: --size ignored for <kind>``
on stderr. Side by side with Docker 20.10."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime


def _answer(res: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return res.returncode, res.stdout, res.stderr


@pytest.fixture
def names(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str) -> Iterator[str]:
    """``NAME`` a container and the image ``NAME:latest``; ``NAME-v`` a volume; ``NAME-n`` a network."""
    name = f"gio{uuid.uuid4().hex[:8]}"
    for run, image in ((strata, busybox_image), (dockerd.run, docker_busybox)):
        run("create", "--network", "none", "--name", name, image, "true")
        run("tag", image, f"{name}:latest")
        run("volume", "create", f"{name}-v")
        run("network", "create", f"{name}-n")
    yield name
    for run in (strata, dockerd.run):
        run("rm", "-f", name, check=False)
        run("rmi", f"{name}:latest", check=False)
        run("volume", "rm", f"{name}-v", check=False)
        run("network", "rm", f"{name}-n", check=False)


@pytest.mark.parametrize("args", [
    ("inspect", "-f", "{{.Name}}", "{n}"),
    ("inspect", "-s", "-f", "{{.Name}} {{.SizeRw}}", "{n}"),
    ("inspect", "-s", "-f", "{{.Os}}", "{n}:latest"),
    ("inspect", "--type", "image", "-s", "-f", "{{.Os}}", "{n}"),
    ("inspect", "-s", "-f", "{{.Name}}", "{n}-v", "{n}-n"),
    ("inspect", "--size", "-f", "{{.Name}}", "{n}-n", "nosuch-{n}"),
    ("inspect", "-f", "{{.Name}}", "UPPER{n}"),
])
def test_inspect_kinds_in_dockers_order(strata: Strata, dockerd: Dockerd, names: str, args: tuple[str, ...]) -> None:
    argv = [a.replace("{n}", names) for a in args]
    ours, theirs = _answer(strata(*argv, check=False)), _answer(dockerd.run(*argv, check=False))
    assert ours == theirs
