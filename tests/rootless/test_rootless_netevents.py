"""The events of a rootless container on the default network (pasta) are the rootful bridge's: Docker logs
``network connect`` before ``start`` and ``network disconnect`` after ``die``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


def test_run_rm_logs_the_network_connect_and_disconnect(user: User) -> None:
    image = import_busybox(user, "netevents:1")
    since = str(int(time.time()) - 1)
    user.strata("run", "--rm", "--name", "netev", image, "true")
    until = str(int(time.time()) + 2)
    fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"
    kinds = ("--filter", "type=container", "--filter", "type=network")
    lines = user.strata("events", "--since", since, "--until", until, *kinds, "--format", fmt).stdout.splitlines()
    assert lines == ["container create netev", "container attach netev", "network connect bridge",
                     "container start netev", "container die netev", "network disconnect bridge",
                     "container destroy netev"]  # fmt: skip
