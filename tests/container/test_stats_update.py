"""``stats`` (Docker's columns, ``--no-stream``, ``--format`` table/json, ``-a``, ``--no-trunc``) reading the
container's cgroup and netns, and ``update`` changing limits of a running container through runc (the
cgroup files seen from inside), recorded for ``inspect``; Docker's errors; side by side with Docker 20.10."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd
from strata.container.stats import Sample, bytes_size, cgroup_usage, stats_row

pytestmark = pytest.mark.runtime

HEADER = "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS"


def test_figures_as_docker_prints_them() -> None:
    assert [bytes_size(n) for n in (0, 796 * 1024, 25_275_658_240, 1023)] == ["0B", "796KiB", "23.54GiB", "1023B"]
    prev = Sample(cpu_ns=1_000_000_000, system_ns=10_000_000_000, online_cpus=2)
    cur = Sample(cpu_ns=1_500_000_000, system_ns=12_000_000_000, online_cpus=2, memory=32 << 20, limit=128 << 20,
                 net_rx=1370, net_tx=516, read=4096, write=2_500_000, pids=3)
    assert stats_row(prev, cur) == {"CPUPerc": "50.00%", "MemUsage": "32MiB / 128MiB", "MemPerc": "25.00%",
                                    "NetIO": "1.37kB / 516B", "BlockIO": "4.1kB / 2.5MB", "PIDs": "3"}
    assert stats_row(Sample(), Sample())["CPUPerc"] == "0.00%"


def test_cgroup_v1_and_v2_files_are_read(tmp_path: Path) -> None:
    """The same figures from cgroup v2's unified files and from v1's per-controller ones."""
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.current").write_text("10485760\n")
    (v2 / "memory.max").write_text("33554432\n")
    (v2 / "memory.stat").write_text("anon 1\ninactive_file 2097152\n")
    (v2 / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\n")
    (v2 / "io.stat").write_text("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n8:16 rbytes=1 wbytes=0\n")
    (v2 / "pids.current").write_text("4\n")
    v1 = {c: tmp_path / c for c in ("memory", "cpuacct", "blkio", "pids")}
    for d in v1.values():
        d.mkdir()
    (v1["memory"] / "memory.usage_in_bytes").write_text("10485760\n")
    (v1["memory"] / "memory.limit_in_bytes").write_text("33554432\n")
    (v1["memory"] / "memory.stat").write_text("cache 5\ntotal_inactive_file 2097152\n")
    (v1["cpuacct"] / "cpuacct.usage").write_text("1500000\n")
    (v1["blkio"] / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 4096\n8:0 Write 8192\n8:16 Read 1\n8:0 Total 12288\nTotal 12289\n")
    (v1["pids"] / "pids.current").write_text("4\n")
    expected = Sample(cpu_ns=1_500_000, memory=8 << 20, limit=32 << 20, read=4097, write=8192, pids=4)
    assert cgroup_usage({"": v2}) == expected
    assert cgroup_usage(v1) == expected
    (v2 / "memory.max").write_text("max\n")  # no limit: the host's memory, as Docker shows it
    assert cgroup_usage({"": v2}).limit > 0


def _cgroup(strata: Strata, name: str, v1: str, v2: str) -> str:
    return strata("exec", name, "sh", "-c", f"cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}").stdout.strip()


def test_stats_of_running_and_stopped_containers(strata: Strata, busybox_image: str) -> None:
    cid = strata("run", "-d", "--name", "busy", "-m", "64m", busybox_image, "sh", "-c",
                 "while :; do :; done & echo forked; sleep 300").stdout.strip()
    strata("create", "--name", "idle", busybox_image, "true")
    try:
        # the loop runs before stats are read (run -d returns before the shell has forked: late on a loaded machine)
        deadline = time.monotonic() + 60
        while strata("logs", "busy").stdout != "forked\n":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        out = strata("stats", "--no-stream").stdout.splitlines()
        assert out[0].split("   ")[0] == "CONTAINER ID" and re.sub(r" {2,}", "  ", out[0]) == re.sub(
            r" {2,}", "  ", HEADER)
        assert len(out) == 2 and out[1].startswith(f"{cid[:12]}   busy ")  # only running ones
        row = json.loads(strata("stats", "--no-stream", "--format", "{{json .}}", "busy").stdout)
        assert sorted(row) == ["BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"]
        assert (row["Container"], row["ID"], row["Name"]) == ("busy", cid[:12], "busy") and int(row["PIDs"]) >= 2
        # the busy loop shows as CPU use (an idle one is 0.00%); not a share of it: on a loaded 2-core machine
        # the loop may get a quarter of a core or less
        assert row["MemUsage"].endswith(" / 64MiB") and float(row["CPUPerc"].rstrip("%")) > 5.0, row
        assert re.fullmatch(r"[\d.]+(B|kB|MB) / [\d.]+(B|kB|MB)", row["NetIO"])
        every = strata("stats", "--no-stream", "-a", "--no-trunc", "--format", "{{.ID}} {{.Name}} {{.PIDs}} "
                       "{{.MemUsage}}").stdout.splitlines()
        assert every[0].endswith(" idle 0 0B / 0B") and re.match(f"{cid} busy [23] .* / 64MiB$", every[1]), every
        table = strata("stats", "--no-stream", "--format", "table {{.Name}}\t{{.PIDs}}", "idle").stdout
        assert table == "NAME      PIDS\nidle      0\n"
        res = strata("stats", "--no-stream", "nosuch", check=False)
        assert (res.returncode, res.stderr) == (1, "Error: No such container: nosuch\n")
    finally:
        strata("rm", "-f", "busy", "idle", check=False)


def test_update_applies_limits_live(strata: Strata, busybox_image: str) -> None:
    cid = strata("run", "-d", "--name", "svc", "-m", "32m", busybox_image, "sleep", "300").stdout.strip()
    try:
        res = strata("update", "-m", "48m", "--cpus", "0.5", "--cpu-shares", "512", "--pids-limit", "100",
                     "--cpuset-cpus", "0", "svc")
        assert res.stdout == "svc\n"
        assert _cgroup(strata, "svc", "memory/memory.limit_in_bytes", "memory.max") == str(48 << 20)
        assert _cgroup(strata, "svc", "pids/pids.max", "pids.max") == "100"
        assert _cgroup(strata, "svc", "cpu/cpu.cfs_quota_us", "cpu.max").split()[0] == "50000"
        fmt = ("{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} "
               "{{.HostConfig.PidsLimit}} {{.HostConfig.CpusetCpus}}")
        assert strata("inspect", "-f", fmt, "svc").stdout == f"{48 << 20} {64 << 20} 500000000 512 100 0\n"
        assert "/ 48MiB" in strata("stats", "--no-stream", "--format", "{{.MemUsage}}", "svc").stdout
        res = strata("update", "-m", "128m", "svc", check=False)
        assert (res.returncode, res.stderr) == (1, f"Error: Cannot update container {cid}: Memory limit should be "
                                                   "smaller than already set memoryswap limit, update the memoryswap at "
                                                   "the same time\n")
        strata("update", "-m", "128m", "--memory-swap", "256m", "svc")
        assert _cgroup(strata, "svc", "memory/memory.limit_in_bytes", "memory.max") == str(128 << 20)
        for args, message in ((["-m", "5m"], "Minimum memory limit allowed is 6MB"),
                              (["--restart", "bogus"], "invalid restart policy 'bogus'")):
            res = strata("update", *args, "svc", check=False)
            assert (res.returncode, res.stderr) == (1, f"Error: {message}\n")
        res = strata("update", "svc", check=False)
        assert (res.returncode, res.stderr) == (1, "Error: you must provide one or more flags when using this command\n")
        res = strata("update", "--pids-limit", "50", "svc", "nosuch", check=False)
        assert (res.returncode, res.stdout, res.stderr) == (1, "svc\n", "Error: No such container: nosuch\n")
        res = strata("update", "-m", "abc", "svc", check=False)
        assert (res.returncode, res.stderr) == (125, "Error: invalid argument \"abc\" for \"-m, --memory\" flag: "
                                                     "invalid size: 'abc'\nSee 'strata update --help'.\n")
        strata("stop", "-t", "0", "svc")
        strata("update", "--pids-limit", "70", "svc")  # a stopped container: recorded, used at its next start
        strata("start", "svc")
        assert _cgroup(strata, "svc", "pids/pids.max", "pids.max") == "70"
    finally:
        strata("rm", "-f", "svc", check=False)


def _error(res: subprocess.CompletedProcess[str]) -> str:
    text = re.sub(r"(?m)^(docker: )?(Error response from daemon: |Error: )?", "", res.stderr.strip())
    return re.sub(r"\b[0-9a-f]{64}\b", "<ID>", text)


def test_stats_and_update_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                       docker_busybox: str) -> None:
    name = "parity-stats"
    strata("run", "-d", "--name", name, "--network", "none", busybox_image, "sleep", "300")
    dockerd.run("run", "-d", "--name", name, "--network", "none", docker_busybox, "sleep", "300")
    try:
        for fmt in ("table {{.Name}}\t{{.PIDs}}\t{{.NetIO}}\t{{.BlockIO}}", "{{.Container}} {{.Name}} {{.PIDs}}"):
            assert strata("stats", "--no-stream", "--format", fmt, name).stdout == \
                dockerd.run("stats", "--no-stream", "--format", fmt, name).stdout
        ours = strata("stats", "--no-stream", name).stdout.splitlines()[0]
        assert ours == dockerd.run("stats", "--no-stream", name).stdout.splitlines()[0]
        for args in (["-m", "5m"], ["-m", "64m"], ["--restart", "bogus"], [], ["--cpus", "abc"],
                     ["--blkio-weight", "x"], ["--pids-limit", "100", "--cpu-shares", "512"]):
            ours_res = strata("update", *args, name, check=False)
            theirs = dockerd.run("update", *args, name, check=False)
            assert (ours_res.returncode, ours_res.stdout, _error(ours_res).replace("strata", "X")) == (
                theirs.returncode, theirs.stdout, _error(theirs).replace("docker", "X")), args
        fmt = "{{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.Memory}}"
        assert strata("inspect", "-f", fmt, name).stdout == dockerd.run("inspect", "-f", fmt, name).stdout
    finally:
        strata("rm", "-f", name, check=False)
        dockerd.run("rm", "-f", name, check=False)
