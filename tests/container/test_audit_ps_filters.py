"""Found by the user's-eye audit of issues 9 and 15, side by side with Docker 20.10:

- ``ps --filter volume=|health=|publish=|expose=`` matched nothing at all (the keys were accepted and
  every container dropped); Docker matches a mount's volume name, bind source or destination, the
  health status (``none`` without a check), the host ports a running container publishes and the
  container ports it exposes, and refuses bad values with its own words.
- ``volume prune`` removed volumes created with ``-o`` (a bind's device, a tmpfs); Docker 20.10 keeps them.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid

import pytest
from container_helpers import Strata

from peers import Dockerd, free_port

pytestmark = pytest.mark.runtime


def _error(res: subprocess.CompletedProcess[str]) -> str:
    text = res.stderr.strip().splitlines()[0] if res.stderr.strip() else ""
    return re.sub(r"^(Error response from daemon: |Error: )", "", text)


@pytest.mark.parametrize("value", [
    "health=bogus", "publish=80:80", "publish=abc", "publish=90-80", "publish=", "publish=99999",
    "expose=x/tcp", "expose=1-x",
])
def test_ps_filter_errors_match_docker(strata: Strata, dockerd: Dockerd, value: str) -> None:
    ours, theirs = strata("ps", "-a", "-f", value, check=False), dockerd.run("ps", "-a", "-f", value, check=False)
    assert theirs.returncode == 1 and _error(theirs)
    assert (ours.returncode, _error(ours)) == (theirs.returncode, _error(theirs))


def _names(strata: Strata, value: str) -> set[str]:
    return set(strata("ps", "-a", "--format", "{{.Names}}", "-f", value).stdout.split())


def test_ps_filters_volume_and_health(strata: Strata, busybox_image: str, tmp_path: object) -> None:
    tag = uuid.uuid4().hex[:8]
    vol, bind = f"fv{tag}", f"/tmp/audit-bind-{tag}"
    strata("create", "--name", "plain", busybox_image, "true")
    strata("create", "--name", "withvol", "-v", f"{vol}:/data", "-v", f"{bind}:/h", busybox_image, "true")
    strata("run", "-d", "--name", "checked", "--health-cmd", "true", "--health-interval", "1s",
           "--network", "none", busybox_image, "sleep", "1000")
    try:
        assert _names(strata, f"volume={vol}") == {"withvol"}
        assert _names(strata, "volume=/data") == {"withvol"}
        assert _names(strata, f"volume={bind}") == _names(strata, "volume=/h") == {"withvol"}
        assert _names(strata, "volume=nothing") == set()
        assert _names(strata, "health=none") == {"plain", "withvol"}
        deadline = time.monotonic() + 60
        while _names(strata, "health=healthy") != {"checked"}:
            assert time.monotonic() < deadline, strata("inspect", "checked").stdout
            time.sleep(0.5)
        assert _names(strata, "health=starting") == _names(strata, "health=unhealthy") == set()
    finally:
        strata("rm", "-f", "-v", "plain", "withvol", "checked", check=False)
        subprocess.run(["rm", "-rf", bind], check=False)


def test_ps_filters_publish_and_expose(strata: Strata, busybox_image: str) -> None:
    port = free_port()
    strata("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "--expose", "9000/udp",
           busybox_image, "sleep", "1000")
    strata("create", "--name", "idle", "-p", f"127.0.0.1:{free_port()}:80", busybox_image, "true")
    try:
        assert _names(strata, f"publish={port}") == _names(strata, f"publish={port}/tcp") == {"web"}
        assert _names(strata, f"publish={port - 1}-{port + 1}") == {"web"}
        assert _names(strata, "publish=80") == _names(strata, f"publish={port}/udp") == set()
        assert _names(strata, "expose=80") == _names(strata, "expose=9000/udp") == {"web"}
        assert _names(strata, "expose=9000") == _names(strata, f"expose={port}") == set()
    finally:
        strata("rm", "-f", "web", "idle", check=False)


def test_volume_prune_keeps_volumes_with_options_as_docker(strata: Strata, dockerd: Dockerd) -> None:
    tag = uuid.uuid4().hex[:8]
    plain, tmpfs = f"prune-plain{tag}", f"prune-tmpfs{tag}"
    label = f"audit={tag}"  # the session's dockerd is shared: prune only this test's volumes
    create = (("volume", "create", "--label", label, plain),
              ("volume", "create", "--label", label, "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m",
               tmpfs))
    try:
        for args in create:
            strata(*args)
            dockerd.run(*args)
        ours = strata("volume", "prune", "-f", "--filter", f"label={label}")
        theirs = dockerd.run("volume", "prune", "-f", "--filter", f"label={label}")
        assert plain in ours.stdout and plain in theirs.stdout
        assert tmpfs not in ours.stdout and tmpfs not in theirs.stdout
        assert strata("volume", "ls", "-q").stdout.split() == [tmpfs]
    finally:
        for name in (plain, tmpfs):
            strata("volume", "rm", name, check=False)
            dockerd.run("volume", "rm", name, check=False)
