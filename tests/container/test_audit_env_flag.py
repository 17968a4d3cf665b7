"""Found by the user's-eye audit of issue 15: ``run``/``create -e =x`` went as far as runc (``environment
variable name can't be empty``, after the container was made); Docker's CLI refuses it while it parses
the flags, exit 125, and nothing is created."""

from __future__ import annotations

import re
import subprocess

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime


def _error(res: subprocess.CompletedProcess[str]) -> list[str]:
    lines = res.stderr.strip().splitlines()
    return [re.sub(r"^(docker: |Error: )", "", line).replace("strata", "docker") for line in lines[:2]]


@pytest.mark.parametrize("command", ["run", "create"])
def test_empty_env_name_refused_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                          docker_busybox: str, command: str) -> None:
    before = strata("ps", "-aq").stdout
    ours = strata(command, "--rm" if command == "run" else "-t", "-e", "=x", busybox_image, "true", check=False)
    theirs = dockerd.run(command, "--rm" if command == "run" else "-t", "-e", "=x", docker_busybox, "true",
                         check=False)
    assert theirs.returncode == 125
    assert (ours.returncode, _error(ours)) == (theirs.returncode, _error(theirs))
    assert _error(ours)[0] == 'invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x'
    assert strata("ps", "-aq").stdout == before
