"""``commit`` of a container that changed nothing, side by side with Docker 20.10: the image gets no new
layer (Docker's NewChildImage: an empty diff only adds a history entry marked ``empty_layer``), so
``rmi`` deletes the image alone; strata stacked an empty layer and ``rmi`` printed a second ``Deleted``."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.peers


def _story(tool: Any, image: str, tag: str) -> list[Any]:
    tool("run", "--name", f"{tag}c", image, "true")
    tool("commit", f"{tag}c", f"{tag}img:1")
    layers = [len(json.loads(tool("image", "inspect", "-f", "{{json .RootFS.Layers}}", ref).stdout))
              for ref in (image, f"{tag}img:1")]
    history = tool("history", "--format", "{{.Size}}", f"{tag}img:1").stdout.split()
    removed = [line.split(":")[0] for line in tool("rmi", f"{tag}img:1").stdout.splitlines()]
    return [layers[1] - layers[0], history[0], removed]


def test_commit_without_changes_adds_no_layer_as_docker(strata: Strata, busybox_image: str, dockerd: Any,
                                                         docker_busybox: str) -> None:
    tag = "ce15" + uuid.uuid4().hex[:6]
    sides = (("docker", dockerd.run, docker_busybox), ("strata", strata, busybox_image))
    try:
        seen = {who: _story(tool, image, tag) for who, tool, image in sides}
        assert seen["strata"] == seen["docker"] == [0, "0B", ["Untagged", "Deleted"]]
    finally:
        for _, tool, _ in sides:
            tool("rm", "-f", f"{tag}c", check=False)
            tool("rmi", "-f", f"{tag}img:1", check=False)
