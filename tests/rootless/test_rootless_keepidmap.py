"""``inspect`` of a ``--userns=keep-id`` container shows the container's own mapping (Podman's lines: the
user's uid is itself, container ids below it are the namespace's 1..), the map the kernel has for it,
not the rootless namespace's that an ordinary container shares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


def test_keep_id_mapping_in_inspect_is_the_containers(user: User) -> None:
    image = import_busybox(user, "keepidmap:1")
    user.strata("create", "--name", "kim", "--userns", "keep-id", "--network", "none", image,
                "cat", "/proc/self/uid_map", "/proc/self/gid_map")  # fmt: skip
    try:
        maps = json.loads(user.strata("inspect", "-f", "{{json .HostConfig.IDMappings}}", "kim").stdout)
        seen = user.strata("start", "-a", "kim").stdout.splitlines()
    finally:
        user.strata("rm", "kim")
    assert user.subuid is not None
    size = user.subuid[1] + 1  # the namespace: the user and its subordinate ids
    assert maps["UidMap"] == [f"0:1:{user.uid}", f"{user.uid}:0:1", f"{user.uid + 1}:{user.uid + 1}:{size - user.uid - 1}"]
    assert maps["GidMap"][1] == f"{user.gid}:0:1"
    assert [":".join(line.split()) for line in seen] == maps["UidMap"] + maps["GidMap"]
