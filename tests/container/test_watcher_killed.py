"""A container outlives its watcher (issue 9): ``kill -9`` of the monitor of a ``-d`` container, or of
the strata process in front of an attached ``run``, leaves the container running; its output is still
logged, its real exit code recorded (137 after ``kill -9`` of its process, as Docker's), ``ps`` tells
the truth, its restart policy still applies, health probing goes on, and the user's terminal is given
back as it was."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from container_helpers import Strata
from ptyrun import PtySession

from peers import Dockerd

pytestmark = pytest.mark.runtime


def _record(strata: Strata, name: str) -> dict[str, object]:
    db = sqlite3.connect(str(strata.root / "containers.db"))
    try:
        for (data,) in db.execute("SELECT data FROM containers WHERE name = ?", (name,)):
            record: dict[str, object] = json.loads(data)
            return record
    finally:
        db.close()
    raise AssertionError(f"no container {name}")


def _inspect(strata: Strata, name: str, fmt: str) -> str:
    return strata("inspect", "-f", fmt, name).stdout.strip()


def _status(strata: Strata, name: str) -> str:
    return strata("ps", "-a", "--format", "{{.Status}}", "-f", f"name=^/{name}$").stdout.strip()


def _until(check: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.1)


def _kill_9_container(strata: Strata, name: str) -> None:
    os.kill(int(_inspect(strata, name, "{{.State.Pid}}")), signal.SIGKILL)


def test_a_detached_container_outlives_its_monitor_and_its_kill_9_is_137(strata: Strata,
                                                                         busybox_image: str) -> None:
    strata("run", "-d", "--name", "lone", busybox_image, "sh", "-c", "echo one; sleep 1; echo two; sleep 1000")
    monitor = int(str(_record(strata, "lone")["monitor_pid"]))
    os.kill(monitor, signal.SIGKILL)
    _until(lambda: _record(strata, "lone")["monitor_pid"] not in (monitor, 0), what="the keeper takes over")
    assert _status(strata, "lone").startswith("Up ")  # ps tells the truth: it still runs
    _until(lambda: strata("logs", "lone").stdout == "one\ntwo\n", what="output after the kill is logged")
    _kill_9_container(strata, "lone")
    _until(lambda: _status(strata, "lone").startswith("Exited"))
    assert _status(strata, "lone").startswith("Exited (137) ")
    assert _inspect(strata, "lone", "{{.State.ExitCode}} {{.State.Pid}} {{.State.Running}}") == "137 0 false"


def test_health_probing_goes_on_after_the_monitor_is_killed(strata: Strata, busybox_image: str,
                                                             tmp_path: Path) -> None:
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    (ctl / "ok").touch()
    strata("run", "-d", "--name", "probed", "-v", f"{ctl}:/ctl", "--health-cmd", "test -e /ctl/ok",
           "--health-interval", "300ms", "--health-retries", "1", busybox_image, "sleep", "1000")
    _until(lambda: _inspect(strata, "probed", "{{.State.Health.Status}}") == "healthy")
    monitor = int(str(_record(strata, "probed")["monitor_pid"]))
    os.kill(monitor, signal.SIGKILL)
    # once the keeper has taken over (a fixed wait could end first on a loaded machine, checking nothing)
    _until(lambda: _record(strata, "probed")["monitor_pid"] not in (monitor, 0), what="the keeper takes over")
    assert _inspect(strata, "probed", "{{.State.Health.Status}}") == "healthy"  # resumed, not reset
    (ctl / "ok").unlink()  # only a probe after the kill can see this
    _until(lambda: _inspect(strata, "probed", "{{.State.Health.Status}}") == "unhealthy", what="probes resumed")
    assert _status(strata, "probed").endswith("(unhealthy)")
    (ctl / "ok").touch()
    _until(lambda: _status(strata, "probed").endswith("(healthy)"))
    strata("kill", "probed")
    _until(lambda: _status(strata, "probed").startswith("Exited (137)"))


def _attached(strata: Strata, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(strata.argv("run", *args), env=strata.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "go\n"  # it runs, attached
    return proc


def test_an_attached_run_outlives_the_strata_process_in_front(strata: Strata, busybox_image: str) -> None:
    front = _attached(strata, "--name", "att", busybox_image, "sh", "-c", "echo go; sleep 1; echo more; sleep 1000")
    front.kill()  # kill -9 of the strata process the user ran
    front.communicate(timeout=60)  # the container's copies of its stdout are closed too
    assert front.returncode == -signal.SIGKILL
    assert _status(strata, "att").startswith("Up ")
    _until(lambda: strata("logs", "att").stdout == "go\nmore\n", what="its output is still logged")
    _kill_9_container(strata, "att")
    _until(lambda: _status(strata, "att").startswith("Exited"))
    assert _status(strata, "att").startswith("Exited (137) ")  # the real exit code, recorded
    assert _inspect(strata, "att", "{{.State.ExitCode}}") == "137"


def test_the_policy_of_an_attached_run_applies_after_its_front_is_killed(strata: Strata,
                                                                          busybox_image: str) -> None:
    front = _attached(strata, "--name", "attp", "--restart", "on-failure:1", busybox_image, "sh", "-c",
                      "echo go; sleep 1000")
    front.kill()
    front.communicate(timeout=60)
    pid = int(_inspect(strata, "attp", "{{.State.Pid}}"))
    _kill_9_container(strata, "attp")
    _until(lambda: _inspect(strata, "attp", "{{.RestartCount}} {{.State.Status}}") == "1 running"
           and int(_inspect(strata, "attp", "{{.State.Pid}}")) != pid, what="the policy brings it back")
    # running is recorded before the restarted shell's echo is logged
    _until(lambda: strata("logs", "attp").stdout == "go\ngo\n", what="the second run's output is logged")
    _kill_9_container(strata, "attp")  # on-failure:1 is spent: it stays down, with the real code
    _until(lambda: _status(strata, "attp").startswith("Exited"))
    assert _inspect(strata, "attp", "{{.RestartCount}} {{.State.ExitCode}}") == "1 137"


def test_the_front_of_an_attached_run_forwards_signals_and_returns_the_exit(strata: Strata,
                                                                             busybox_image: str) -> None:
    front = _attached(strata, "--name", "sig", busybox_image, "sh", "-c",
                      "trap 'echo term; exit 9' TERM; echo go; while true; do sleep 0.1; done")
    front.send_signal(signal.SIGTERM)  # the user's signal reaches the container, as Docker's --sig-proxy
    out, _ = front.communicate(timeout=60)
    assert (front.returncode, out) == (9, "term\n")
    assert _status(strata, "sig").startswith("Exited (9) ")


def test_an_interactive_terminal_is_given_back_when_the_front_is_killed(strata: Strata,
                                                                        busybox_image: str) -> None:
    session = PtySession(strata.argv("run", "-it", "--name", "tty", busybox_image, "sh"), strata.env)
    session.expect(b"# ")
    assert not termios.tcgetattr(session.fd)[3] & termios.ICANON  # raw while attached
    os.kill(session.pid, signal.SIGKILL)
    os.waitpid(session.pid, 0)
    _until(lambda: bool(termios.tcgetattr(session.fd)[3] & termios.ICANON), 60, "the terminal mode restored")
    assert _status(strata, "tty").startswith("Up ")
    strata("kill", "tty")
    _until(lambda: _status(strata, "tty").startswith("Exited (137)"))
    os.close(session.fd)


def test_killing_the_front_matches_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                          docker_busybox: str) -> None:
    """The same scenario with Docker 20.10: ``kill -9`` of the ``docker run`` client leaves the container
    running; ``kill -9`` of its process is then ``Exited (137)`` in both."""
    name = f"front{secrets.token_hex(3)}"
    script = "echo go; sleep 1000"
    sides = {
        "strata": (strata.argv("run", "--name", name, busybox_image, "sh", "-c", script), strata.env,
                   lambda *a: strata(*a).stdout),
        "docker": (dockerd.argv("run", "--name", name, docker_busybox, "sh", "-c", script), dockerd.env,
                   lambda *a: dockerd.run(*a).stdout),
    }
    seen = {}
    try:
        for side, (argv, env, cli) in sides.items():
            front = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert front.stdout is not None and front.stdout.readline() == "go\n"
            front.kill()
            front.communicate(timeout=60)
            running = cli("inspect", "-f", "{{.State.Status}}", name).strip()
            os.kill(int(cli("inspect", "-f", "{{.State.Pid}}", name)), signal.SIGKILL)
            _until(lambda: cli("inspect", "-f", "{{.State.Status}}", name).strip() == "exited")  # noqa: B023
            status = cli("ps", "-a", "--format", "{{.Status}}", "-f", f"name={name}").strip()
            seen[side] = (running, cli("inspect", "-f", "{{.State.ExitCode}}", name).strip(), status.split(")")[0])
    finally:
        dockerd.run("rm", "-f", name, check=False)
    assert seen["strata"] == seen["docker"] == ("running", "137", "Exited (137")
