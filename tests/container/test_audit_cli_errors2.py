"""Found by the user's-eye audit of issue 15, second round, side by side with Docker 20.10: ``port C abc``
(nat's own words), ``port C ""`` (every port), ``logs --tail x`` (a traceback; Docker shows every line),
``ps --filter exited=x`` (strconv.Atoi's words), ``commit C 'bad:tag:x'`` (ParseNormalizedNamed's error,
not ``tag``'s wrapping), ``volume ls --filter dangling=maybe`` (``Invalid filter 'dangling=[maybe]'``,
before anything is listed), ``volume create v`` (a one-character name is ``too short``)."""

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
    return res.returncode, res.stdout, err


@pytest.fixture
def pair(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str) -> Iterator[str]:
    name = f"errs{uuid.uuid4().hex[:8]}"
    strata("run", "--name", name, busybox_image, "sh", "-c", "echo 1; echo 2; echo 3")
    dockerd.run("run", "--network", "none", "--name", name, docker_busybox, "sh", "-c", "echo 1; echo 2; echo 3")
    yield name
    strata("rm", "-f", name, check=False)
    dockerd.run("rm", "-f", name, check=False)


@pytest.mark.parametrize("args", [
    ("port", "{c}", "abc"), ("port", "{c}", "99999"), ("port", "{c}", "90-80"), ("port", "{c}", "80-81"),
    ("port", "{c}", ""),
    ("logs", "--tail", "x", "{c}"), ("logs", "--tail", "-5", "{c}"), ("logs", "--tail", "+1", "{c}"),
    ("ps", "-aq", "--filter", "exited=x"), ("ps", "-aq", "--filter", "exited=99999999999999999999"),
    ("commit", "{c}", "bad:tag:x"), ("commit", "{c}", "a b"),
    ("volume", "ls", "--filter", "dangling=maybe"), ("volume", "ls", "--filter", "dangling=True"),
    ("volume", "create", "v"), ("volume", "create", "@"),
])
def test_answers_as_docker(strata: Strata, dockerd: Dockerd, pair: str, args: tuple[str, ...]) -> None:
    argv = [a.replace("{c}", pair) for a in args]
    ours, theirs = _answer(strata(*argv, check=False)), _answer(dockerd.run(*argv, check=False))
    assert ours == theirs
