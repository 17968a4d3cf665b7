"""``run --platform`` and ``--pull always|missing|never``: containerd's platform parsing, a local image for
another platform refused with Docker's error, the pull policies against a real registry, side by side
with Docker 20.10."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd, Registry
from strata.container.imagechoice import mismatch, parse_platform
from strata.errors import StrataError

pytestmark = pytest.mark.runtime


def test_platforms_parse_as_containerd() -> None:
    assert parse_platform("linux/amd64") == ("linux", "amd64", "")
    assert parse_platform("Linux/x86_64") == ("linux", "amd64", "")
    assert parse_platform("linux/arm/7") == ("linux", "arm", "v7")
    assert parse_platform("linux/aarch64/v8") == ("linux", "arm64", "")
    assert parse_platform("arm64") == ("linux", "arm64", "")
    assert parse_platform("linux")[0] == "linux"
    with pytest.raises(StrataError, match=re.escape('error parsing specified platform: "bogus": unknown operating '
                                                    "system or architecture: invalid argument")):
        parse_platform("bogus")
    cfg = {"os": "linux", "architecture": "amd64"}
    assert mismatch("x:1", ("linux", "amd64", ""), cfg) is None
    assert mismatch("x:1", ("linux", "arm64", ""), cfg) == (
        "image with reference x:1 was found but does not match the specified platform: wanted linux/arm64, "
        "actual: linux/amd64")


def test_pull_policies(strata: Strata, busybox_tar: Path, distribution_registry: Registry) -> None:
    ref = f"127.0.0.1:{distribution_registry.port}/strata-test/policy:1"
    strata("import", "-c", 'CMD ["/bin/sh"]', str(busybox_tar), ref)
    strata("push", ref)
    res = strata("run", "--rm", "--pull", "always", ref, "echo", "ok")
    assert res.stdout == "ok\n" and f"Status: Image is up to date for {ref}" in res.stderr
    assert "Unable to find image" not in res.stderr
    strata("rmi", ref)
    res = strata("run", "--rm", "--pull", "never", ref, "true", check=False)
    assert (res.returncode, res.stderr) == (125, f"Error: No such image: {ref}\n")
    assert strata("images", "-q", ref).stdout == ""
    res = strata("run", "--rm", "--pull", "missing", ref, "echo", "ok")
    assert res.stdout == "ok\n" and res.stderr.startswith(f"Unable to find image '{ref}' locally\n")
    res = strata("run", "--rm", "--platform", "linux/arm64", "--pull", "never", ref, "true", check=False)
    assert (res.returncode, res.stderr) == (125, f"Error: image with reference {ref} was found but does not match "
                                                 "the specified platform: wanted linux/arm64, actual: linux/amd64\n")
    res = strata("run", "--rm", "--platform", "linux/arm64", ref, "true", check=False)  # pulled again: not there
    assert res.returncode == 125 and res.stderr.startswith(f"Unable to find image '{ref}' locally\n"), res.stderr
    assert strata("ps", "-aq").stdout == ""
    assert strata("run", "--rm", "--platform", "linux/amd64", ref, "echo", "ok").stdout == "ok\n"


def _error(res: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in res.stderr.strip().splitlines() if not line.startswith("time=")]  # Docker CLI noise
    text = re.sub(r"^(docker: )?(Error response from daemon: |Error: )?", "", "\n".join(lines))
    return re.sub(r"\.?\nSee '(docker|strata) run --help'\.$", "", text).rstrip(".")


@pytest.mark.parametrize("flags", [
    ["--platform", "bogus"], ["--platform", "linux/arm64", "--pull", "never"], ["--pull", "never", "-NOSUCH-"],
    ["--platform", "linux/amd64"], ["--pull", "bogus"],
])
def test_platform_and_pull_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                                        flags: list[str]) -> None:
    def args(image: str) -> list[str]:
        return ["nosuch-strata/img:1" if f == "-NOSUCH-" else f for f in flags] + (
            [] if "-NOSUCH-" in flags else [image])

    ours = strata("run", "--rm", *args(busybox_image), "true", check=False)
    theirs = dockerd.run("run", "--rm", *args(docker_busybox), "true", check=False)
    assert (ours.returncode, _error(ours).replace(busybox_image, "IMG")) == (
        theirs.returncode, _error(theirs).replace(docker_busybox, "IMG"))
