"""Interop with the real peers: Docker 20.10 loads what strata saves (same ID, runs), strata loads what
Docker saves (same ID, tags, history), and skopeo's archives round-trip through strata keeping digests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from corehelpers import Strata  # type: ignore[import-not-found]


def test_docker_loads_what_strata_saves(strata: Strata, rootfs_tar: Path, tmp_path: Path, dockerd: Any) -> None:
    image_id = strata("import", "-c", 'CMD ["/bin/sh"]', str(rootfs_tar), "strata-interop/save:1").stdout.strip()
    archive = tmp_path / "s.tar"
    strata("save", "-o", str(archive), "strata-interop/save:1")
    out = dockerd.run("load", "-i", str(archive)).stdout
    assert "Loaded image: strata-interop/save:1" in out
    got = dockerd.run("image", "inspect", "--format", "{{.Id}}", "strata-interop/save:1").stdout.strip()
    assert got == image_id
    ran = dockerd.run("run", "--rm", "--network", "none", "strata-interop/save:1", "echo", "hello from strata").stdout
    assert ran == "hello from strata\n"


def test_strata_loads_what_docker_saves(
    strata: Strata, tmp_path: Path, dockerd: Any, docker_busybox: str
) -> None:
    dockerd.run("rm", "-f", "interop-c")
    dockerd.run("run", "--network", "none", "--name", "interop-c", docker_busybox, "sh", "-c", "echo hi > /hello")
    dockerd.run("commit", "-a", "someone", "-m", "a docker commit", "interop-c", "strata-interop/docker:2")
    dockerd.run("rm", "interop-c")
    docker_id = dockerd.run("image", "inspect", "--format", "{{.Id}}", "strata-interop/docker:2").stdout.strip()
    docker_hist = dockerd.run("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "strata-interop/docker:2").stdout
    archive = tmp_path / "d.tar"
    dockerd.run("save", "-o", str(archive), "strata-interop/docker:2")
    assert strata("load", "-i", str(archive)).stdout == "Loaded image: strata-interop/docker:2\n"
    doc = json.loads(strata("inspect", "strata-interop/docker:2").stdout)[0]
    assert doc["Id"] == docker_id
    assert doc["Author"] == "someone" and doc["Comment"] == "a docker commit"
    ours = strata("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "strata-interop/docker:2").stdout
    assert ours == docker_hist
    # and back: strata saves it, Docker loads it under the same ID after removing its own copy
    dockerd.run("rmi", "strata-interop/docker:2")
    back = tmp_path / "back.tar"
    strata("save", "-o", str(back), "strata-interop/docker:2")
    dockerd.run("load", "-i", str(back))
    assert dockerd.run("image", "inspect", "--format", "{{.Id}}", "strata-interop/docker:2").stdout.strip() == docker_id
    assert dockerd.run("run", "--rm", "--network", "none", "strata-interop/docker:2", "cat", "/hello").stdout == "hi\n"


def test_skopeo_archives_round_trip(strata: Strata, rootfs_tar: Path, tmp_path: Path, skopeo: Any) -> None:
    image_id = strata("import", str(rootfs_tar), "strata-interop/sk:1").stdout.strip()
    saved = tmp_path / "saved.tar"
    strata("save", "-o", str(saved), "strata-interop/sk:1")
    # docker-archive: skopeo reads strata's archive and writes its own; strata loads that
    sk_docker = tmp_path / "sk-docker.tar"
    skopeo("copy", f"docker-archive:{saved}", f"docker-archive:{sk_docker}:strata-interop/sk:2")
    cfg = json.loads(skopeo("inspect", "--config", f"docker-archive:{sk_docker}").stdout)
    assert cfg["rootfs"]["diff_ids"] == json.loads(strata("inspect", "strata-interop/sk:1").stdout)[0]["RootFS"]["Layers"]
    assert strata("load", "-i", str(sk_docker)).stdout == "Loaded image: strata-interop/sk:2\n"
    assert json.loads(strata("inspect", "strata-interop/sk:2").stdout)[0]["Id"] == image_id
    # oci-archive: skopeo turns strata's archive (Docker 20.10's layout, no OCI layout in it) into one
    sk_oci = tmp_path / "sk.oci.tar"
    skopeo("copy", f"docker-archive:{saved}", f"oci-archive:{sk_oci}:strata-interop/sk:3")
    raw = json.loads(skopeo("inspect", "--raw", f"oci-archive:{sk_oci}").stdout)
    strata("rmi", "strata-interop/sk:1", "strata-interop/sk:2")
    out = strata("load", "-i", str(sk_oci)).stdout
    assert out.startswith("Loaded image")
    docs = [json.loads(strata("inspect", x).stdout)[0] for x in strata("images", "-q").stdout.split()]
    # skopeo rewrites a Docker config as an OCI one on the way (a new image ID); the layers stay
    assert [d["Id"] for d in docs] == [raw["config"]["digest"]]
    assert docs[0]["RootFS"]["Layers"] == cfg["rootfs"]["diff_ids"]
