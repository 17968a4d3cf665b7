"""A container whose processes moved into a cgroup below its own (a container running systemd, or Docker in
Docker on cgroup v2, does so) still has its figures in ``stats``: Docker reads the container's cgroup, which
counts its descendants. The check that a cgroup is the container's own (added for rootless containers left
in their starter's cgroup) looked only at the last path component, so ``/strata/<id>/sub`` was not the
container's and stats showed 0B of memory."""

from __future__ import annotations

import os
import time

import pytest
from container_helpers import Strata

from strata.container.stats import owns_cgroup

pytestmark = pytest.mark.runtime

CID = "6698de50bc2fab8ede00986eb14e998d344eadddae2de79dc7a8e6ceb731784f"


def test_a_cgroup_below_the_containers_is_its_own() -> None:
    assert owns_cgroup(f"/strata/{CID}", CID)
    assert owns_cgroup(f"/strata/{CID}/init.scope", CID)
    assert owns_cgroup(f"/user.slice/strata-{CID}.scope/sub", CID)
    assert not owns_cgroup("/user.slice/session-1.scope", CID)
    assert not owns_cgroup("/", CID)


def test_stats_of_a_container_in_a_nested_cgroup(strata: Strata, busybox_image: str) -> None:
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("the test moves the container's process in cgroup v1's memory and pids hierarchies")
    name = "review-nested-cgroup"
    script = ("for c in memory pids; do d=/sys/fs/cgroup/$c/sub; [ -d /sys/fs/cgroup/$c ] || continue; "
              "mkdir -p $d && echo $$ > $d/cgroup.procs; done; echo moved; exec sleep 300")
    strata("run", "-d", "--privileged", "--name", name, "--network", "none", busybox_image, "sh", "-c", script)
    try:
        deadline = time.monotonic() + 60
        while "moved" not in strata("logs", name).stdout:
            assert time.monotonic() < deadline, "the container did not move into its sub-cgroup"
            time.sleep(0.2)
        pid = strata("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
        with open(f"/proc/{pid}/cgroup") as f:
            assert any(line.rstrip().endswith("/sub") for line in f), "no controller with a sub-cgroup here"
        row = strata("stats", "--no-stream", "--format", "{{.MemUsage}}|{{.PIDs}}", name).stdout.strip()
        usage, pids = row.split("|")
        assert not usage.startswith("0B "), row
        assert pids == "1", row
    finally:
        strata("rm", "-f", name, check=False)
