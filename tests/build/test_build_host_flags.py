"""``build``'s flags for its step containers next to ``DOCKER_BUILDKIT=0 docker build`` (Docker 20.10's
classic builder): what a RUN sees of ``-m``/``--memory-swap``/``-c``/``--cpu-period``/``--cpu-quota``/
``--cpuset-cpus``/``--cpuset-mems`` (its cgroup v1 files), ``--ulimit`` (``ulimit -n``), ``--shm-size``
(``df /dev/shm``), ``--add-host`` (``/etc/hosts``) and ``--cgroup-parent`` (``/proc/self/cgroup``); the
CLI's errors for bad values (exit 125), the daemon's when a step creates its container (a metadata
step's too; a cached step creates none), ``--security-opt``/``--isolation``/``--squash`` refused in
Docker's words, ``--compress``/``--disable-content-trust`` accepted."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

CGROUP_V1 = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified")


def _docker(dockerd: Any, ctx: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    return subprocess.run(dockerd.argv("build", *args, str(ctx)), env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def _context(tmp_path: Path, name: str, dockerfile: str) -> Path:
    ctx = tmp_path / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _masked(text: str) -> str:
    """IDs masked; the legacy builder's deprecation notice (a newer client's) dropped."""
    text = re.sub(r"\b[0-9a-f]{64}\b", "<id>", text)
    return re.sub(r"\b[0-9a-f]{12}\b", "<id>", text)


def _error(stderr: str) -> str:
    """The error after Docker's or strata's prefix."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    for prefix in ("Error response from daemon: ", "Error: "):
        last = last.removeprefix(prefix)
    return last


def _remove_cgroups(parent: str) -> None:
    """The parent cgroups Docker and strata leave behind (empty once the step containers are gone)."""
    for controller in _CONTROLLERS:
        base = Path("/sys/fs/cgroup") / controller
        for where in (base, *base.glob("process_api/*")):
            top = where / parent
            if top.is_dir():
                for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    os.rmdir(d)
                os.rmdir(top)


LIMITS = ("-m", "64m", "--memory-swap", "128m", "-c", "512", "--cpu-period", "100000", "--cpu-quota", "50000",
          "--cpuset-cpus", "0", "--cpuset-mems", "0", "--ulimit", "nofile=10:20", "--ulimit", "nofile=1000:2000",
          "--shm-size", "10m",
          "--add-host", "parity-host:10.1.2.3", "--compress", "--disable-content-trust")
SHOW = (
    "RUN echo limits $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"
    " /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.cfs_quota_us"
    " /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset/cpuset.mems)"
    " && echo nofile $(ulimit -Sn) $(ulimit -Hn) && df -k /dev/shm | tail -1 && grep parity-host /etc/hosts"
    " && echo cpu-cgroup $(grep ':cpu:' /proc/self/cgroup | cut -d: -f3 | cut -d/ -f1-3)\n"
)


@pytest.mark.skipif(not CGROUP_V1, reason="the RUN reads cgroup v1 files")
def test_a_run_step_sees_the_limits_as_in_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str,
                                                 tmp_path: Path) -> None:
    parent = f"bf-{uuid.uuid4().hex[:8]}"
    ctx = _context(tmp_path, "limits", f"FROM {BUSYBOX}\n{SHOW}")
    try:
        d = _docker(dockerd, ctx, "--no-cache", "--cgroup-parent", f"/{parent}/x", *LIMITS)
        assert d.returncode == 0, d.stdout + d.stderr
        s = strata("build", "--no-cache", "--cgroup-parent", f"/{parent}/x", *LIMITS, str(ctx))
    finally:
        _remove_cgroups(parent)
    seen = [line for line in s.stdout.splitlines() if line.startswith(("limits", "nofile", "shm", "10.1", "cpu-"))]
    assert seen == [
        "limits 67108864 134217728 512 100000 50000 0 0", "nofile 1000 2000",
        "shm                      10240         0     10240   0% /dev/shm", "10.1.2.3\tparity-host",
        f"cpu-cgroup /{parent}/x",
    ]  # fmt: skip
    assert seen == [line for line in d.stdout.splitlines() if line.startswith(("limits", "nofile", "shm", "10.1", "cpu-"))]


def test_without_the_flags_a_step_has_no_limits(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "plain", f"FROM {BUSYBOX}\nRUN ulimit -Sn && grep -c parity-host /etc/hosts || true\n")
    out = strata("build", "--no-cache", str(ctx)).stdout.splitlines()
    assert "0" in out and "1000" not in out


# (flags, Dockerfile) whose build fails: the same output, error and exit code as Docker's
FAILING = {
    "memory-min": (("-m", "1m"), "RUN true"),
    "swap-below-memory": (("-m", "10m", "--memory-swap", "5m"), "RUN true"),
    "swap-without-memory": (("--memory-swap", "10m"), "RUN true"),
    "cfs-period": (("--cpu-period", "10"), "RUN true"),
    "cfs-quota": (("--cpu-quota", "10"), "RUN true"),
    "cpuset-missing": (("--cpuset-cpus", "99"), "RUN true"),
    "cpuset-format": (("--cpuset-cpus", "a"), "RUN true"),
    "mems-missing": (("--cpuset-mems", "9"), "RUN true"),
    "metadata-step": (("-m", "1m"), "ENV A=b\nRUN true"),  # Docker creates a container for ENV too
    "workdir-step": (("--cpu-quota", "10"), "WORKDIR /bf-new\nRUN true"),  # and for WORKDIR
    "cpu-shares-min": (("-c", "1"), "RUN true"),  # runc's error, in the build's words
    "no-executable": ((), 'RUN ["/nope"]'),
    "squash": (("--squash",), "RUN true"),
    "squash-false": (("--squash=false",), "RUN true"),
    "security-opt": (("--security-opt", "seccomp=unconfined"), "RUN true"),
    "security-opt-comma": (("--security-opt", ","), "RUN true"),
    "security-before-isolation": (("--isolation", "hyperv", "--security-opt", "x"), "RUN true"),
    "isolation": (("--isolation", "process"), "RUN true"),
    "memory-syntax": (("-m", "abc"), "RUN true"),
    "shm-syntax": (("--shm-size", "-1"), "RUN true"),
    "swap-syntax": (("--memory-swap", "x"), "RUN true"),
    "ulimit-format": (("--ulimit", "nofile"), "RUN true"),
    "ulimit-type": (("--ulimit", "bogus=1"), "RUN true"),
    "ulimit-order": (("--ulimit", "nofile=10:5"), "RUN true"),
    "add-host-format": (("--add-host", "foo"), "RUN true"),
    "add-host-ip": (("--add-host", "foo:bar"), "RUN true"),
    "cpu-shares-syntax": (("-c", "x"), "RUN true"),
    "cpu-period-syntax": (("--cpu-period", "1.5"), "RUN true"),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_refused_as_docker_refuses(case: str, dockerd: Any, docker_busybox: str, strata: Strata, busybox: str,
                                   tmp_path: Path) -> None:
    flags, steps = FAILING[case]
    ctx = _context(tmp_path, case, f"FROM {BUSYBOX}\n{steps}\n")
    d = _docker(dockerd, ctx, "--no-cache", *flags)
    s = strata("build", "--no-cache", *flags, str(ctx), check=False)
    assert d.returncode != 0, d.stdout
    assert (s.returncode, _error(s.stderr)) == (d.returncode, _error(d.stderr).replace("docker build", "strata build"))
    assert _masked(s.stdout) == _masked(d.stdout)


@pytest.mark.parametrize("flags", [("--isolation", "default"), ("--isolation", "Default"), ("--isolation=",),
                                   ("--security-opt", ""), ("--compress",), ("--disable-content-trust",)],
                         ids=" ".join)
def test_accepted_as_docker_accepts(flags: tuple[str, ...], dockerd: Any, docker_busybox: str, strata: Strata,
                                    busybox: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "ok", f"FROM {BUSYBOX}\nRUN true\n")
    d = _docker(dockerd, ctx, "-q", *flags)
    assert d.returncode == 0, d.stderr
    s = strata("build", "-q", *flags, str(ctx), check=False)
    assert s.returncode == 0, s.stderr
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", s.stdout)


def test_a_cached_step_creates_no_container_to_check(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str,
                                                     tmp_path: Path) -> None:
    ctx = _context(tmp_path, "cached", f"FROM {BUSYBOX}\nENV BF={uuid.uuid4().hex}\nRUN true\n")
    for run in (lambda *a: _docker(dockerd, ctx, *a), lambda *a: strata("build", *a, str(ctx), check=False)):
        assert run().returncode == 0
        again = run("-m", "1m", "--cpuset-cpus", "99")
        assert again.returncode == 0, again.stderr
        assert again.stdout.count(" ---> Using cache") == 2, again.stdout


NEW_FLAGS = [
    ["build", "-m", "64m", "--memory-swap=-1", "-c", "2", "--cpu-period", "1000", "--cpu-quota=2000", "."],
    ["build", "--cpuset-cpus", "0", "--cpuset-mems=0", "--ulimit", "nofile=1:2", "--ulimit=nproc=3", "."],
    ["build", "--shm-size", "1g", "--cgroup-parent", "/x", "--add-host", "a:1.2.3.4", "--add-host=b:::1", "."],
    ["build", "--cache-from", "a,b", "--cache-from=c", "--security-opt", "x", "--isolation", "default", "."],
    ["build", "--compress", "--disable-content-trust", "--squash", "-qm", "6m", "."],
    ["build", "--compress=false", "--disable-content-trust=false", "--squash=false", "-c7", "."],
]


@pytest.mark.parametrize("argv", NEW_FLAGS, ids=" ".join)
def test_the_flag_table_reads_them_as_argparse(argv: list[str]) -> None:
    """A build's words take the table's short way (strata.cli.listing) and give argparse's namespace."""
    from strata.cli import listing
    from strata.cli.parser import parse_args

    ours = listing.parse_listing(argv)
    assert ours is not None
    assert vars(ours) == vars(parse_args(argv))
