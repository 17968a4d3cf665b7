"""``strata events`` during a classic build, side by side with a private dockerd (DOCKER_BUILDKIT=0): per
step, the events of the container Docker makes for it -- WORKDIR and the config-only steps (ENV, LABEL)
``create`` and ``destroy``; COPY and ADD none; RUN ``create``, ``attach``, ``start``, ``die``,
``destroy`` -- with Docker's attributes (the step's parent image, a generated name, the labels, no strata
mark of its own)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import peers

pytestmark = pytest.mark.peers

DOCKERFILE = "FROM {base}\nWORKDIR /w\nCOPY f /f\nADD f /g\nRUN true\nENV A=1\nLABEL l=v\nCOPY f /h\n"
FORMAT = "{{json .}}"


def _per_container(events_out: str, build_out: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(which step's image it came from, [(action, attributes normalised)]) per container, in the order
    the containers were created; the images named by their step ("image N": what step N made)."""
    images = re.findall(r"^ ---> ([0-9a-f]{12})$", build_out, re.M)
    running = re.findall(r"^ ---> Running in ([0-9a-f]{12})$", build_out, re.M)
    groups: dict[str, list[tuple[str, str]]] = {}
    origin: dict[str, str] = {}
    for line in events_out.splitlines():
        ev = json.loads(line)
        if ev["Type"] != "container":
            continue
        attrs = dict(ev["Actor"]["Attributes"])
        image = attrs.pop("image").removeprefix("sha256:")[:12]
        if image not in images:
            continue  # another test's
        cid = ev["Actor"]["ID"]
        assert re.fullmatch(r"[a-z]+_[a-z]+[0-9]?", attrs.pop("name")), ev
        assert cid[:12] in running, ev  # the container the build output names
        origin[cid] = f"image {images.index(image)}"
        groups.setdefault(cid, []).append((ev["Action"], json.dumps(attrs, sort_keys=True)))
    return [(origin[cid], acts) for cid, acts in groups.items()]


@pytest.mark.parametrize("driver", ["", "vfs"])  # vfs: every step gets a created container (COPY's is silent)
def test_build_step_container_events_as_dockers(root: Path, dockerd: Any, tmp_path: Path, driver: str) -> None:
    tag = uuid.uuid4().hex[:8]
    tar = peers.busybox_rootfs_tar(tmp_path / "rootfs.tar", extra_files={"etc/be-id": tag.encode()})
    base = f"be/base-{tag}:1"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("f\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    senv = dict(os.environ, STRATA_ROOT=str(root), **({"STRATA_STORAGE_DRIVER": driver} if driver else {}))
    strata = [sys.executable, "-m", "strata"]
    denv = {**dockerd.env, "DOCKER_BUILDKIT": "0"}
    docker = dockerd.argv()
    seen = {}
    for tool, argv, env in (("docker", docker, denv), ("strata", strata, senv)):
        subprocess.run([*argv, "import", "-c", 'CMD ["/bin/sh"]', str(tar), base], env=env, check=True,
                       capture_output=True)
        since = str(int(time.time()) - 1)
        built = subprocess.run([*argv, "build", "--no-cache", "--network", "none", "-t", f"be/out-{tag}:1",
                                str(ctx)], env=env, capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, built.stderr
        until = str(int(time.time()) + 2)
        events = subprocess.run([*argv, "events", "--since", since, "--until", until, "--format", FORMAT],
                                env=env, capture_output=True, text=True, timeout=60, check=True)
        seen[tool] = _per_container(events.stdout, built.stdout)
        subprocess.run([*argv, "rmi", f"be/out-{tag}:1", base], env=env, capture_output=True)
    assert seen["strata"] == seen["docker"]
    assert [acts[0][0] for _, acts in seen["docker"]] == ["create"] * 4  # WORKDIR, RUN, ENV, LABEL
