"""``top`` and ``stats`` of a rootless container on a host without delegated cgroups (this one: cgroup v1).
runc makes no cgroup for it, so the container stays in the cgroup of the strata process that started it,
with every other process of the user's session: its procs are not the container's, nor its figures."""

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
    return import_busybox(user, "topstats:1")


@pytest.fixture
def running(user: User, image: str) -> Iterator[str]:
    user.strata("run", "-d", "--name", "ts", "--network", "none", image, "sh", "-c", "sleep 999 & exec sleep 998")
    yield "ts"
    user.strata("rm", "-f", "ts")


def test_top_lists_only_the_container_processes(user: User, running: str) -> None:
    lines = user.strata("top", running).stdout.splitlines()
    assert lines[0].split()[:2] == ["UID", "PID"]
    commands = sorted(line.split(None, 7)[7] for line in lines[1:])
    assert commands == ["sleep 998", "sleep 999"], lines  # not the user's shell, strata or the host's


def test_stats_without_a_cgroup_of_its_own(user: User, running: str) -> None:
    if delegated_controllers(user.uid):
        pytest.skip("the user's cgroups are delegated here")
    done = user.strata("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}} {{.BlockIO}}")
    assert done.stdout == "ts 2 0B / 0B 0B / 0B\n"  # no figures from the starter's cgroup; its two pids
