"""Found by the user's-eye audit of issues 9 and 15: errors and output that differed from Docker 20.10,
each run side by side (stderr compared after Docker's ``docker: ``/``Error response from daemon: ``
prefixes and strata's ``Error: ``, the trailing ``See '… --help'.`` lines left out):

- ``--ulimit nofile=x`` (strconv's words), ``nofile=1:2:3``; ``--cpuset-cpus 99`` / ``x`` (refused up front;
  strata let runc fail); ``--mount type=tmpfs,tmpfs-size=1MB`` (go-units sizes: runc refused the raw
  ``size=1MB``), ``tmpfs-size=x``, ``tmpfs-mode=9`` (a Python traceback);
- ``kill`` of a missing container (``Cannot kill container: X: …``), ``start`` of one (``failed to start
  containers: X`` last); ``volume|network inspect`` print what they found before the errors."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime

CPUS = Path("/sys/fs/cgroup/cpuset/cpuset.cpus")


def _lines(res: subprocess.CompletedProcess[str]) -> list[str]:
    out = []
    for line in (res.stdout + res.stderr).strip().splitlines():
        line = re.sub(r"^(docker: )?(Error response from daemon: |Error: )?", "", line).rstrip(".")
        if line and not line.startswith("See '"):
            out.append(line.replace("strata", "docker"))
    return out


@pytest.mark.parametrize("flags", [
    ["--ulimit", "nofile=x"], ["--ulimit", "nofile=5:x"], ["--ulimit", "nofile=1:2:3"], ["--ulimit", "nofile=1 "],
    ["--cpuset-cpus", "99"], ["--cpuset-cpus", "0-x"], ["--cpuset-cpus", "1-0"], ["--cpuset-cpus", "9000"],
    ["--mount", "type=tmpfs,dst=/t,tmpfs-size=x"], ["--mount", "type=tmpfs,dst=/t,tmpfs-mode=9"],
    ["--mount", "type=tmpfs,dst=/t,tmpfs-mode=0o17"],
])
def test_bad_run_flags_refused_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                         docker_busybox: str, flags: list[str]) -> None:
    if flags[0] == "--cpuset-cpus" and not CPUS.exists():
        pytest.skip("no cgroup v1 cpuset root to compare against")
    before = strata("ps", "-aq").stdout
    ours = strata("run", "--rm", *flags, busybox_image, "true", check=False)
    theirs = dockerd.run("run", "--rm", "--network", "none", *flags, docker_busybox, "true", check=False)
    assert theirs.returncode == 125
    assert (ours.returncode, _lines(ours)) == (theirs.returncode, _lines(theirs))
    assert strata("ps", "-aq").stdout == before


@pytest.mark.parametrize("size", ["1MB", "1mib", "1.5m", "1048576", "2g"])
def test_tmpfs_sizes_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                               size: str) -> None:
    flags = ["--mount", f"type=tmpfs,dst=/t,tmpfs-size={size}", "--mount", "type=tmpfs,dst=/u,tmpfs-mode=1770"]
    script = "df -k /t | tail -1 | awk '{print $2}'; stat -c %a /u"
    ours = strata("run", "--rm", *flags, busybox_image, "sh", "-c", script)
    theirs = dockerd.run("run", "--rm", "--network", "none", *flags, docker_busybox, "sh", "-c", script)
    assert ours.stdout == theirs.stdout


def test_missing_containers_reported_as_docker(strata: Strata, dockerd: Dockerd) -> None:
    a, b = f"nosuch{uuid.uuid4().hex[:8]}", f"nosuch{uuid.uuid4().hex[:8]}"
    for args in (("kill", a, b), ("start", a, b), ("volume", "inspect", a, b), ("network", "inspect", a),
                 ("volume", "inspect", "-f", "{{.Name}}", a)):
        ours, theirs = strata(*args, check=False), dockerd.run(*args, check=False)
        assert (ours.returncode, ours.stdout, _lines(ours)) == (theirs.returncode, theirs.stdout, _lines(theirs)), args
    ours = strata("start", a, check=False)
    assert ours.stderr.splitlines()[-1] == f"Error: failed to start containers: {a}"


def test_inspect_prints_what_it_found_before_the_errors(strata: Strata) -> None:
    vol = f"found{uuid.uuid4().hex[:8]}"
    strata("volume", "create", vol)
    res = subprocess.run([*strata.argv("volume", "inspect", "-f", "{{.Name}}", "missing-one", vol)], env=strata.env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    assert (res.returncode, res.stdout) == (1, f"{vol}\nError: No such volume: missing-one\n")
