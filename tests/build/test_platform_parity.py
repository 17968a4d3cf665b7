"""A base image pulled for ``FROM --platform`` / ``--platform``, next to Docker 20.10's classic builder:
the registry holds a manifest list with a linux/amd64 image only; asking for linux/arm64 fails with
what Docker says, asking for linux/amd64 pulls that image."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

pytestmark = pytest.mark.peers


def _error(text: str) -> str:
    """The message a failed build ends with (Docker's without a prefix, strata's after ``Error: ``)."""
    last = [line for line in text.splitlines() if line.strip()][-1]
    return re.sub(r"^(Error: |Error response from daemon: )", "", last)


def _list_of_one(host: str, repo: str) -> str:
    """A manifest list tagged ``list`` holding the pushed image as linux/amd64; its reference."""
    v2 = "application/vnd.docker.distribution.manifest.v2+json"
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/single", headers={"Accept": v2})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    index = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
             "manifests": [{"mediaType": v2, "size": len(raw), "digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
                            "platform": {"architecture": "amd64", "os": "linux"}}]}  # fmt: skip
    put = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/list", data=json.dumps(index).encode(),
                                 method="PUT", headers={"Content-Type": index["mediaType"]})  # type: ignore[arg-type]  # fmt: skip
    urllib.request.urlopen(put, timeout=30).close()
    return f"{host}/{repo}:list"


def test_pull_for_a_platform_as_docker(dockerd: Any, docker_busybox: str, distribution_registry: Any,
                                       strata: Strata, busybox: str, tmp_path: Path) -> None:  # fmt: skip
    repo = f"platform-{uuid.uuid4().hex[:8]}/busybox"
    single = f"{distribution_registry.host}/{repo}:single"
    dockerd.run("tag", BUSYBOX, single)
    dockerd.run("push", single)
    dockerd.run("rmi", single)
    ref = _list_of_one(distribution_registry.host, repo)
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    pulled = (dockerd.run("pull", "--platform", "linux/arm64", ref, check=False), strata("pull", "--platform", "linux/arm64", ref, check=False))
    assert _error(pulled[0].stderr) == _error(pulled[1].stderr)  # `pull` says it as Docker does too
    for platform, ok in (("linux/arm64", False), ("linux/amd64", True)):
        ctx = tmp_path / platform.replace("/", "-")
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM --platform={platform} {ref}\nRUN true\n")
        theirs = subprocess.run(dockerd.argv("build", str(ctx)), env=env, capture_output=True, text=True, timeout=300)
        ours = strata("build", str(ctx), check=False)
        assert (ours.returncode == 0, theirs.returncode == 0) == (ok, ok), (ours.stderr, theirs.stderr)
        if not ok:
            assert _error(ours.stderr) == _error(theirs.stderr)
        strata("rmi", "-f", ref, check=False)
        dockerd.run("rmi", "-f", ref, check=False)
