"""``inspect -f`` writes the template's output as it is and then a newline, as the Docker CLI does: a
template ending in a newline (or ``println``) prints an empty line after it (strata stripped the
template's own trailing newlines). Side by side with Docker 20.10, for containers, images and volumes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime


@pytest.fixture
def name(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str) -> Iterator[str]:
    n = f"itn{uuid.uuid4().hex[:8]}"
    for run, image in ((strata, busybox_image), (dockerd.run, docker_busybox)):
        run("create", "--network", "none", "--name", n, image, "true")
        run("volume", "create", n)
    yield n
    for run in (strata, dockerd.run):
        run("rm", "-f", n, check=False)
        run("volume", "rm", n, check=False)


@pytest.mark.parametrize(("kind", "template"), [
    ("container", "{{.Name}}\n"), ("container", "{{println .Name}}"), ("container", "{{.Name}}\n\n"),
    ("container", "{{range .Config.Cmd}}{{.}}\n{{end}}"), ("container", "{{.Name}}"),
    ("volume", "{{.Name}}\n"), ("image", "{{.Os}}\n"),
])
def test_the_templates_own_newlines_are_kept(strata: Strata, dockerd: Dockerd, name: str, kind: str,
                                             template: str) -> None:
    if kind == "image":
        ours = strata("image", "inspect", "-f", template, "ubuntu:14.04").stdout
        theirs = dockerd.run("image", "inspect", "-f", template, "strata-test/busybox:latest").stdout
    else:
        ours = strata(kind, "inspect", "-f", template, name).stdout
        theirs = dockerd.run(kind, "inspect", "-f", template, name).stdout
    assert ours == theirs
    assert ours.endswith("\n\n") == (template != "{{.Name}}")  # each of the others ends in its own newline
