"""``pause`` and ``update`` of a rootless container without a cgroup of its own (no delegation: this cgroup
v1 host). runc can neither freeze it nor change its limits: ``pause`` is refused in words that name what
is needed (not runc's log lines), ``update`` drops the limits with the warnings a run prints, as ``run``
does, and still records a new restart policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

from strata.rootless.cgroups import delegated_controllers

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


@pytest.fixture(scope="module")
def image(user: User) -> str:
    return import_busybox(user, "pauseupdate:1")


@pytest.fixture
def running(user: User, image: str) -> Iterator[str]:
    if delegated_controllers(user.uid):
        pytest.skip("the user's cgroups are delegated here")
    cid = user.strata("run", "-d", "--name", "pu", "--network", "none", image, "sleep", "999").stdout.strip()
    yield cid
    user.strata("rm", "-f", "pu")


def test_pause_is_refused_naming_the_need(user: User, running: str) -> None:
    done = user.strata("pause", "pu", check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"Error: Cannot pause container {running}: a rootless container without a cgroup of its "
                           "own cannot be paused (it needs cgroup v2 with the user's controllers delegated by "
                           "systemd)\n")  # fmt: skip
    assert user.strata("inspect", "-f", "{{.State.Status}}", "pu").stdout == "running\n"


def test_update_drops_the_limits_with_warnings(user: User, running: str) -> None:
    done = user.strata("update", "--cpus", "1", "--pids-limit", "10", "--restart", "on-failure:3", "pu")
    assert done.stdout == ("pu\nYour kernel does not support PIDs limit capabilities or the cgroup is not mounted. "
                           "PIDs limit discarded.\nYour kernel does not support CPU CFS scheduler or the cgroup is "
                           "not mounted. CPU quota discarded.\n")  # fmt: skip
    fmt = "{{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}} {{.State.Status}}"
    assert user.strata("inspect", "-f", fmt, "pu").stdout == "0 on-failure running\n"
