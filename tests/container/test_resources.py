"""Resource limits and privileges (``-m``, ``--memory-swap``, ``--cpus``, ``--pids-limit``, ``--ulimit``,
``--init``, ``--cap-add``/``--cap-drop``, ``--privileged``): Docker's errors up front, the limits seen
from inside the container (cgroup v1 or v2, written by the runtime)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from container_helpers import Strata

from strata.container.resources import parse_cpus, parse_ram, parse_ulimit


def test_parsers() -> None:
    assert parse_ram("6m") == 6 << 20 and parse_ram("1g") == 1 << 30 and parse_ram("512KB") == 512 << 10
    assert parse_ram("100") == 100
    assert parse_cpus("0.5") == 500_000_000 and parse_cpus("1.25") == 1_250_000_000
    assert parse_ulimit("nofile=100:200") == {"Name": "nofile", "Hard": 200, "Soft": 100}
    with pytest.raises(ValueError, match="invalid size: 'x'"):
        parse_ram("x")


@pytest.mark.parametrize(("flags", "message"), [
    (["-m", "5m"], "Minimum memory limit allowed is 6MB"),
    (["--memory-swap", "64m"], "You should always set the Memory limit when using Memoryswap limit, see usage"),
    (["-m", "64m", "--memory-swap", "32m"],
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (["-m", "1x"], 'invalid argument "1x" for "-m, --memory" flag: invalid size: \'1x\'\nSee \'strata run --help\'.'),
    (["--cpus", "abc"], 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number\n'
                        "See 'strata run --help'."),
    (["--cap-add", "FOO"], 'invalid CapAdd: unknown capability: "CAP_FOO"'),
])
def test_bad_limits_are_refused_up_front(strata: Strata, busybox_image: str, flags: list[str], message: str) -> None:
    res = strata("run", "--rm", *flags, busybox_image, "true", check=False)
    assert (res.returncode, res.stderr) == (125, f"Error: {message}\n")
    assert strata("ps", "-aq").stdout == ""


def _cgroup_file(v1: str, v2: str) -> str:
    return f"cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}"


@pytest.mark.runtime
def test_limits_apply_inside_the_container(strata: Strata, busybox_image: str) -> None:
    script = "; ".join([
        "ulimit -n", "ulimit -Hn",
        _cgroup_file("memory/memory.limit_in_bytes", "memory.max"),
        _cgroup_file("pids/pids.max", "pids.max"),
    ])
    out = strata("run", "--name", "lim", "-m", "32m", "--cpus", "0.5", "--pids-limit", "50", "--ulimit",
                 "nofile=100:200", busybox_image, "sh", "-c", script).stdout.split()
    assert out == ["100", "200", str(32 << 20), "50"]
    hc = json.loads(strata("inspect", "-f", "{{json .HostConfig}}", "lim").stdout)
    assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"], hc["Ulimits"]) == (
        32 << 20, 500_000_000, 50, [{"Name": "nofile", "Hard": 200, "Soft": 100}])


@pytest.mark.runtime
def test_init_and_capabilities(strata: Strata, busybox_image: str) -> None:
    if not Path("/usr/bin/tini-static").exists():
        pytest.skip("tini is not installed")
    ps = strata("run", "--rm", "--init", busybox_image, "ps", "-o", "pid,args").stdout.splitlines()
    assert ps[1].split() == ["1", "/sbin/docker-init", "--", "ps", "-o", "pid,args"]
    assert "CapEff:\t0000000000000000" in strata("run", "--rm", "--cap-drop", "ALL", busybox_image, "grep", "Cap",
                                                 "/proc/self/status").stdout
    default = strata("run", "--rm", busybox_image, "grep", "CapEff", "/proc/self/status").stdout.split()[1]
    added = strata("run", "--rm", "--cap-add", "sys_admin", busybox_image, "grep", "CapEff",
                   "/proc/self/status").stdout.split()[1]
    assert int(added, 16) == int(default, 16) | (1 << 21)  # CAP_SYS_ADMIN
    assert default == "00000000a80425fb"  # Docker's default set
    with open("/proc/self/status") as f:
        ours = next(line.split()[1] for line in f if line.startswith("CapBnd:"))
    privileged = strata("run", "--rm", "--privileged", busybox_image, "grep", "CapEff", "/proc/self/status").stdout
    assert privileged.split()[1] == ours
