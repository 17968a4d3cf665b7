"""Restart policies without a daemon: the container's monitor restarts it with Docker's back-off;
stop/kill by the user end the policy; ``update --restart``; ``start --all`` at boot."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from container_helpers import Strata

from strata.container.monitor import restart_delay


def _status(strata: Strata, name: str) -> str:
    return strata("ps", "-a", "--format", "{{.Status}}", "-f", f"name=^/{name}$").stdout.strip()


def _inspect(strata: Strata, name: str, fmt: str) -> str:
    return strata("inspect", "-f", fmt, name).stdout.strip()


def _until(check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_restart_delay_is_dockers_backoff() -> None:
    always = {"Name": "always", "MaximumRetryCount": 0}
    delays, prev = [], 0.0
    for _ in range(12):
        d = restart_delay(always, 1, 0, 0.01, prev, False)
        assert d is not None
        delays.append(d)
        prev = d
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8] and delays[-1] == 60.0
    assert restart_delay(always, 0, 0, 10.0, 25.6, False) == 0.1  # up 10 s: back to 100 ms
    assert restart_delay(always, 0, 0, 1, 0.1, True) is None  # stopped by the user
    on_failure = {"Name": "on-failure", "MaximumRetryCount": 2}
    assert restart_delay(on_failure, 0, 0, 1, 0, False) is None
    assert restart_delay(on_failure, 1, 1, 1, 0, False) == 0.1
    assert restart_delay(on_failure, 1, 2, 1, 0, False) is None
    assert restart_delay({"Name": "no"}, 1, 0, 1, 0, False) is None
    assert restart_delay({"Name": "unless-stopped"}, 0, 5, 1, 0, False) == 0.1


@pytest.mark.runtime
def test_on_failure_counts_and_backs_off(strata: Strata, busybox_image: str) -> None:
    started = time.monotonic()
    strata("run", "-d", "--name", "flaky", "--restart", "on-failure:2", busybox_image, "sh", "-c", "exit 3")
    _until(lambda: _status(strata, "flaky").startswith("Exited"), 60)
    assert time.monotonic() - started >= 0.3  # 100 ms, then 200 ms: never at once
    assert _inspect(strata, "flaky", "{{.RestartCount}} {{.State.ExitCode}} {{json .HostConfig.RestartPolicy}}") == \
        '2 3 {"Name":"on-failure","MaximumRetryCount":2}'
    time.sleep(0.5)
    assert _inspect(strata, "flaky", "{{.RestartCount}}") == "2"


@pytest.mark.runtime
def test_a_crash_loop_is_never_a_busy_loop(strata: Strata, busybox_image: str) -> None:
    began = time.monotonic()
    strata("run", "-d", "--name", "loop", "--restart", "always", busybox_image, "false")
    time.sleep(2.0)
    # each run takes its time too (long on a loaded machine): wait for two restarts, then bound the count by
    # the back-off alone, 0.1 * (2**n - 1) s for n restarts (a busy loop would make hundreds)
    _until(lambda: int(_inspect(strata, "loop", "{{.RestartCount}}")) >= 2, 60)
    count = int(_inspect(strata, "loop", "{{.RestartCount}}"))
    elapsed = time.monotonic() - began
    assert 2 <= count <= max(6, math.log2(elapsed / 0.1 + 1) + 1), (count, elapsed)
    status = _status(strata, "loop")
    assert status.startswith(("Restarting (1) ", "Up ")), status
    strata("stop", "loop")
    assert _status(strata, "loop").startswith("Exited (1)")


@pytest.mark.runtime
def test_always_comes_back_after_kill_9_and_stop_ends_it(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "svc", "--restart=always", busybox_image, "sleep", "1000")
    pid = int(_inspect(strata, "svc", "{{.State.Pid}}"))
    os.kill(pid, signal.SIGKILL)  # the service dies under it: the policy brings it back
    _until(lambda: _inspect(strata, "svc", "{{.RestartCount}} {{.State.Running}}") == "1 true"
           and int(_inspect(strata, "svc", "{{.State.Pid}}")) not in (0, pid), 60)
    assert _status(strata, "svc").startswith("Up ")
    strata("stop", "-t", "1", "svc")
    time.sleep(1.0)
    assert _status(strata, "svc").startswith("Exited (137)")  # the user's stop: it stays stopped
    strata("start", "svc")
    assert _inspect(strata, "svc", "{{.RestartCount}} {{.State.Status}}") == "0 running"  # a start resets it
    strata("kill", "svc")
    _until(lambda: _status(strata, "svc").startswith("Exited (137)"), 60)  # its monitor records the exit
    time.sleep(0.6)
    assert _status(strata, "svc").startswith("Exited (137)")  # and no policy brings it back
    # update --restart, then start --all as a boot would: always/unless-stopped not stopped by the user
    strata("update", "--restart", "unless-stopped", "svc")
    assert _inspect(strata, "svc", "{{json .HostConfig.RestartPolicy}}") == '{"Name":"unless-stopped","MaximumRetryCount":0}'
    strata("run", "-d", "--name", "boot", "--restart", "always", busybox_image, "sleep", "1000")
    strata("kill", "boot")
    # a boot finds it dead: its monitor records the exit first (late on a loaded machine; start --all skips a
    # container still recorded running)
    _until(lambda: _status(strata, "boot").startswith("Exited (137)"), 60)
    strata("create", "--name", "plain", busybox_image, "sleep", "1000")
    assert strata("start", "--all").stdout == "boot\n"
    assert _inspect(strata, "boot", "{{.State.Status}}") == "running"
    assert _inspect(strata, "svc", "{{.State.Status}} ") .strip() == "exited"
    assert _inspect(strata, "plain", "{{.State.Status}}") == "created"
    res = strata("update", "--restart", "bogus", "svc", check=False)
    assert (res.returncode, res.stderr) == (1, "Error: invalid restart policy 'bogus'\n")  # the daemon's, as Docker


def _monitor_pid(strata: Strata, name: str) -> int:
    import json
    import sqlite3

    db = sqlite3.connect(str(strata.root / "containers.db"))
    try:
        for (data,) in db.execute("SELECT data FROM containers WHERE name = ?", (name,)):
            return int(json.loads(data)["monitor_pid"])
    finally:
        db.close()
    raise AssertionError(f"no container {name}")


@pytest.mark.runtime
def test_a_container_outlives_its_monitor(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "orphan", busybox_image, "sh", "-c",
           "i=0; while [ $i -lt 6 ]; do echo tick $i; i=$((i+1)); sleep 0.3; done; exit 7")
    os.kill(_monitor_pid(strata, "orphan"), signal.SIGKILL)
    _until(lambda: _status(strata, "orphan").startswith("Exited"), 60)
    assert _status(strata, "orphan").startswith("Exited (7) ")  # the real exit code, not a guess
    assert strata("logs", "orphan").stdout == "".join(f"tick {i}\n" for i in range(6))  # still logged
    # the restart policy still applies, and a kill -9 of the container is recorded as Docker does
    strata("run", "-d", "--name", "svc2", "--restart", "always", busybox_image, "sleep", "1000")
    os.kill(_monitor_pid(strata, "svc2"), signal.SIGKILL)
    time.sleep(0.3)
    os.kill(int(_inspect(strata, "svc2", "{{.State.Pid}}")), signal.SIGKILL)
    _until(lambda: _inspect(strata, "svc2", "{{.RestartCount}} {{.State.Status}}") == "1 running", 60)
    strata("kill", "svc2")
    _until(lambda: _status(strata, "svc2").startswith("Exited"), 60)
    assert _status(strata, "svc2").startswith("Exited (137) ")


@pytest.mark.runtime
def test_an_attached_run_returns_and_its_policy_goes_on(strata: Strata, busybox_image: str) -> None:
    res = strata("run", "--name", "att", "--restart", "on-failure:2", busybox_image, "sh", "-c", "echo run; exit 4",
                 check=False)
    assert (res.returncode, res.stdout) == (4, "run\n")  # the CLI returns with the first exit, as Docker's
    _until(lambda: _inspect(strata, "att", "{{.RestartCount}} {{.State.Status}}") == "2 exited", 60)
    assert strata("logs", "att").stdout == "run\n" * 3


@pytest.mark.runtime
def test_rm_f_of_an_always_container_removes_it_for_good(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "gone", "--restart", "always", busybox_image, "sleep", "1000")
    strata("rm", "-f", "gone")
    time.sleep(0.5)
    assert strata("ps", "-aq").stdout == ""
    assert not [p for p in (strata.root / "containers").iterdir() if not p.name.startswith(".")]


@pytest.mark.runtime
def test_kill_ends_a_crash_loop_whatever_its_state(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "crash", "--restart", "always", busybox_image, "sh", "-c", "sleep 0.2; exit 2")
    time.sleep(0.7)
    res = strata("kill", "crash", check=False)  # running or waiting to restart: either way it ends here
    assert res.returncode in (0, 1), res
    if res.returncode:
        assert "is not running" in res.stderr
    _until(lambda: _inspect(strata, "crash", "{{.State.Status}}") == "exited", 60)  # its monitor records it
    time.sleep(1.0)  # a restart already under way would show by now
    count = _inspect(strata, "crash", "{{.RestartCount}}")
    time.sleep(1.0)
    assert _inspect(strata, "crash", "{{.RestartCount}} {{.State.Status}}") == f"{count} exited"


REPO = Path(__file__).resolve().parents[2]


def _unit_lines(unit: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith(f"{key}=")]


def _power_off(strata: Strata, name: str) -> None:
    """What a reboot does to a running container: its keeper, monitor and processes are gone at once."""
    monitor = _monitor_pid(strata, name)
    with open(f"/proc/{monitor}/stat") as f:
        keeper = int(f.read().rsplit(")", 1)[1].split()[1])
    pid = int(_inspect(strata, name, "{{.State.Pid}}"))
    for p in (keeper, monitor, pid):
        os.kill(p, signal.SIGKILL)


@pytest.mark.runtime
def test_the_boot_unit_installs_verifies_and_starts_what_its_policy_says(strata: Strata, busybox_image: str,
                                                                        tmp_path: Path) -> None:
    """``make install-restart-unit`` writes the unit with strata's path; systemd accepts it; its
    ExecStart after a "reboot" brings back always and unless-stopped containers, nothing else."""
    launcher = tmp_path / "strata"
    launcher.write_text(f"#!/bin/sh\nPYTHONPATH={REPO / 'src'} exec {sys.executable} -m strata \"$@\"\n")
    launcher.chmod(0o755)
    dest = tmp_path / "dest"
    subprocess.run(["make", "-s", "-C", str(REPO), "install-restart-unit", f"DESTDIR={dest}",
                    f"STRATA_BIN={launcher}"], check=True, capture_output=True, timeout=60)
    unit = dest / "etc/systemd/system/strata-restart.service"
    assert _unit_lines(unit, "ExecStart") == [f"{launcher} start --all"]
    assert _unit_lines(unit, "WantedBy") == ["multi-user.target"]
    if shutil.which("systemd-analyze"):
        res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
        assert (res.returncode, res.stderr) == (0, ""), res.stderr

    for name, policy in (("always", "always"), ("unless", "unless-stopped"), ("stopped", "unless-stopped"),
                         ("never", "no")):
        strata("run", "-d", "--name", name, "--restart", policy, busybox_image, "sleep", "1000")
    strata("stop", "-t", "1", "stopped")  # the user stopped this one: it stays stopped
    for name in ("always", "unless", "never"):
        _power_off(strata, name)
    _until(lambda: strata("ps", "-q").stdout == "", 60)

    env = dict(os.environ)
    env.update(line.split("=", 1) for line in _unit_lines(unit, "Environment"))
    assert env["STRATA_ROOT"] == "/var/lib/strata"
    env["STRATA_ROOT"] = str(strata.root)  # the test's store, never the machine's
    [exec_start] = _unit_lines(unit, "ExecStart")
    res = subprocess.run(exec_start.split(), env=env, capture_output=True, text=True, timeout=120)
    assert (res.returncode, res.stdout, res.stderr) == (0, "always\nunless\n", "")
    states = {n: _inspect(strata, n, "{{.State.Status}}") for n in ("always", "unless", "stopped", "never")}
    assert states == {"always": "running", "unless": "running", "stopped": "exited", "never": "exited"}
