"""``run``/``create`` flags of issue 9: ``--env-file``, ``--label-file``, ``--cidfile``, ``--stop-signal``,
``--stop-timeout`` - real runc containers, and Docker 20.10's errors and inspect fields side by side."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd
from strata.container.health import healthcheck_config, merge_healthcheck, parse_duration
from strata.container.spec import read_kv_file
from strata.errors import StrataError


def _error(res: subprocess.CompletedProcess[str]) -> str:
    text = res.stderr.strip().splitlines()[0] if res.stderr.strip() else ""
    text = re.sub(r"^(docker: )?(Error response from daemon: |Error: )?", "", text)
    return text.rstrip(".")


def test_kv_file_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "env"
    f.write_bytes(b"\xef\xbb\xbf# comment\n\n  A=1\nB=x=y \nFROM_HOST\nNOT_SET\r\nC=\n")
    monkeypatch.setenv("FROM_HOST", "h")
    monkeypatch.delenv("NOT_SET", raising=False)
    assert read_kv_file(str(f), from_environ=True) == ["A=1", "B=x=y ", "FROM_HOST=h", "C="]
    assert read_kv_file(str(f), from_environ=False) == ["A=1", "B=x=y ", "C="]
    f.write_text("BAD KEY=1\n")
    with pytest.raises(StrataError, match="poorly formatted environment: variable 'BAD KEY' contains whitespaces"):
        read_kv_file(str(f), from_environ=True)
    f.write_text("=1\n")
    with pytest.raises(StrataError, match="poorly formatted environment: no variable name on line '=1'"):
        read_kv_file(str(f), from_environ=True)
    with pytest.raises(StrataError, match=f"open {tmp_path}/nope: no such file or directory"):
        read_kv_file(str(tmp_path / "nope"), from_environ=True)


@pytest.mark.runtime
def test_env_and_label_files(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text("# the file's\nFILE_ONLY=f\nBOTH=from-file\n")
    labels = tmp_path / "labels"
    labels.write_text("a=1\nbare\nb=from-file\n")
    out = strata("run", "--name", "kv", "--env-file", str(env), "-e", "BOTH=from-flag", "--label-file",
                 str(labels), "-l", "b=from-flag", busybox_image, "env").stdout.splitlines()
    assert "FILE_ONLY=f" in out and "BOTH=from-flag" in out and "BOTH=from-file" not in out
    doc = json.loads(strata("inspect", "kv").stdout)[0]
    assert doc["Config"]["Labels"] == {"a": "1", "b": "from-flag"}  # Docker drops a bare key
    assert [e for e in doc["Config"]["Env"] if e.startswith(("FILE_ONLY", "BOTH"))] == ["FILE_ONLY=f", "BOTH=from-flag"]


@pytest.mark.runtime
def test_missing_env_file_is_refused(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    for cmd in ("run", "create"):
        res = strata(cmd, "--env-file", str(tmp_path / "nope"), busybox_image, "true", check=False)
        assert (res.returncode, res.stderr) == (
            125, f"Error: open {tmp_path}/nope: no such file or directory.\nSee 'strata {cmd} --help'.\n")
    assert strata("ps", "-aq").stdout == ""


@pytest.mark.runtime
def test_cidfile(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    cidfile = tmp_path / "cid"
    cid = strata("run", "-d", "--cidfile", str(cidfile), busybox_image, "sleep", "30").stdout.strip()
    assert cidfile.read_text() == cid
    doc = json.loads(strata("inspect", cid).stdout)[0]
    assert doc["HostConfig"]["ContainerIDFile"] == str(cidfile)
    res = strata("create", "--cidfile", str(cidfile), busybox_image, "true", check=False)
    assert (res.returncode, res.stderr) == (1, "Error: container ID file found, make sure the other container "
                                               f"isn't running or delete {cidfile}\n")
    res = strata("run", "--cidfile", str(cidfile), busybox_image, "true", check=False)
    assert (res.returncode, res.stderr) == (125, "Error: container ID file found, make sure the other container "
                                                 f"isn't running or delete {cidfile}.\nSee 'strata run --help'.\n")
    assert strata("ps", "-aq", "--no-trunc").stdout.split() == [cid] and cidfile.read_text() == cid
    # a create that fails leaves no file behind
    res = strata("create", "--cidfile", str(tmp_path / "cid2"), "--stop-signal", "NOPE", busybox_image, check=False)
    assert (res.returncode, res.stderr) == (1, "Error: Invalid signal: NOPE\n")
    assert not (tmp_path / "cid2").exists()


@pytest.mark.runtime
def test_stop_signal_and_timeout(strata: Strata, busybox_image: str) -> None:
    script = 'trap "echo got USR1; exit 3" USR1; echo ready; while true; do sleep 0.1; done'
    strata("run", "-d", "--name", "usr1", "--stop-signal", "SIGUSR1", busybox_image, "sh", "-c", script)
    # pid 1 ignores SIGTERM: only the stop timeout ends it
    strata("run", "-d", "--name", "deaf", "--stop-timeout", "1", busybox_image, "sleep", "60")
    cfg = json.loads(strata("inspect", "usr1", "deaf").stdout)
    assert (cfg[0]["Config"]["StopSignal"], "StopTimeout" in cfg[0]["Config"]) == ("SIGUSR1", False)
    assert (cfg[1]["Config"]["StopTimeout"], "StopSignal" in cfg[1]["Config"]) == (1, False)
    # the trap is set once "ready" is out (pid 1 ignores a signal it has no handler for: a SIGUSR1 sent
    # before would be lost and only the 10 s timeout would end it, with 137)
    deadline = time.monotonic() + 60
    while strata("logs", "usr1").stdout != "ready\n":
        assert time.monotonic() < deadline, strata("logs", "usr1").stdout
        time.sleep(0.1)
    assert strata("stop", "usr1").stdout == "usr1\n"
    assert strata("inspect", "-f", "{{.State.ExitCode}}", "usr1").stdout == "3\n"
    assert strata("logs", "usr1").stdout == "ready\ngot USR1\n"
    began = time.monotonic()
    strata("stop", "deaf")
    assert time.monotonic() - began < 9  # its 1 s, not the default 10 s (room for a slow CLI on a loaded machine)
    assert strata("inspect", "-f", "{{.State.ExitCode}}", "deaf").stdout == "137\n"


def _refused_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                       flags: list[str]) -> None:
    """``create`` and ``run`` with ``flags`` fail as Docker's do (exit code, error) and leave nothing."""
    for cmd in ("create", "run"):
        ours = strata(cmd, *flags, busybox_image, "true", check=False)
        theirs = dockerd.run(cmd, *flags, docker_busybox, "true", check=False)
        assert (ours.returncode, _error(ours)) == (theirs.returncode, _error(theirs))
    assert strata("ps", "-aq").stdout == ""


@pytest.mark.runtime
@pytest.mark.parametrize("flags", [
    ["--stop-signal", "NOPE"], ["--stop-signal", "0"], ["--stop-timeout", "x"], ["--cidfile", "/nonexistent/d/cid"],
    ["--env-file", "/nonexistent"], ["--label-file", "/nonexistent"],
])
def test_bad_flags_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                                flags: list[str]) -> None:
    _refused_as_docker(strata, busybox_image, dockerd, docker_busybox, flags)


@pytest.mark.runtime
def test_inspect_fields_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                                     tmp_path: Path) -> None:
    (tmp_path / "env").write_text("A=1\n")
    (tmp_path / "labels").write_text("l=1\nbare\n")
    flags = ["--env-file", str(tmp_path / "env"), "--label-file", str(tmp_path / "labels"), "--stop-signal", "USR2",
             "--stop-timeout", "7"]
    fmt = "{{json .Config.StopSignal}} {{json .Config.StopTimeout}} {{json .Config.Labels}} {{json .Config.Env}}"
    ours_id = strata("create", "--cidfile", str(tmp_path / "ours"), *flags, busybox_image, "true").stdout.strip()
    theirs_id = dockerd.run("create", "--cidfile", str(tmp_path / "theirs"), *flags, docker_busybox, "true").stdout.strip()
    try:
        assert (tmp_path / "ours").read_text() == ours_id and (tmp_path / "theirs").read_text() == theirs_id
        ours = strata("inspect", "-f", fmt, ours_id).stdout
        theirs = dockerd.run("inspect", "-f", fmt, theirs_id).stdout
        assert ours.replace(" null", "") == theirs.replace(" null", "")
    finally:
        dockerd.run("rm", theirs_id, check=False)


def test_health_flag_parsing() -> None:
    assert parse_duration("1m30s") == 90_000_000_000 and parse_duration("500ms") == 500_000_000
    assert parse_duration("0") == 0 and parse_duration("1.5s") == 1_500_000_000
    for text, why in (("5", 'missing unit in duration "5"'), ("5x", 'unknown unit "x" in duration "5x"'),
                      ("x", 'invalid duration "x"')):
        with pytest.raises(ValueError, match=f"time: {why}"):
            parse_duration(text)
    zero = {"Interval": 0, "Timeout": 0, "StartPeriod": 0}
    assert healthcheck_config(None, zero, 0, False) is None
    assert healthcheck_config(None, zero, 0, True) == {"Test": ["NONE"]}
    assert healthcheck_config("true", {**zero, "Interval": 10**9}, 2, False) == {
        "Test": ["CMD-SHELL", "true"], "Interval": 10**9, "Retries": 2}
    with pytest.raises(StrataError, match="--no-healthcheck conflicts with --health-\\* options"):
        healthcheck_config("true", zero, 0, True)
    with pytest.raises(StrataError, match="--health-retries cannot be negative"):
        healthcheck_config("true", zero, -1, False)
    image = {"Test": ["CMD", "check"], "Interval": 5, "Retries": 4}
    assert merge_healthcheck({"Interval": 7}, image) == {"Test": ["CMD", "check"], "Interval": 7, "Retries": 4}
    assert merge_healthcheck(None, image) == image and merge_healthcheck({"Test": ["NONE"]}, image)["Test"] == ["NONE"]


def _health(strata: Strata, name: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(strata("inspect", "-f", "{{json .State.Health}}", name).stdout)
    return doc


def _wait_status(strata: Strata, name: str, want: str, seconds: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while True:
        health = _health(strata, name)
        if health["Status"] == want or time.monotonic() > deadline:
            return health
        time.sleep(0.3)


@pytest.mark.runtime
def test_health_check_runs_in_the_container(strata: Strata, busybox_image: str) -> None:
    # the first probe comes one interval after the start: long enough for the two commands that look
    # before it on a loaded machine (with 1s, a probe could land first and fill the log)
    began = time.monotonic()
    strata("run", "-d", "--name", "hc", "--health-cmd", "cat /tmp/ok", "--health-interval", "3s",
           "--health-retries", "2", busybox_image, "sleep", "300")
    status, health = strata("ps", "--format", "{{.Status}}").stdout, _health(strata, "hc")
    if time.monotonic() - began < 3.0:  # before the first probe could run
        assert status.endswith(" (health: starting)\n") and health == {"Status": "starting", "FailingStreak": 0,
                                                                        "Log": []}, (status, health)
    else:  # a stalled machine: probes may have failed meanwhile, each one logged (the last 5) and counted
        failed, streak = list(health["Log"]), int(health["FailingStreak"])  # type: ignore[call-overload]
        assert len(failed) == min(streak, 5) and all(
            (p["ExitCode"], p["Output"]) == (1, "cat: can't open '/tmp/ok': No such file or directory\n")
            for p in failed), health
        assert health["Status"] == ("starting" if streak < 2 else "unhealthy"), health
        assert status.endswith((" (health: starting)\n", " (unhealthy)\n")), status
    strata("exec", "hc", "sh", "-c", "echo fine > /tmp/ok")
    health = _wait_status(strata, "hc", "healthy")
    assert health["Status"] == "healthy" and health["FailingStreak"] == 0
    last = health["Log"][-1]  # type: ignore[index]
    assert (last["ExitCode"], last["Output"]) == (0, "fine\n")
    assert strata("ps", "--format", "{{.Status}}").stdout.endswith(" (healthy)\n")
    strata("exec", "hc", "rm", "/tmp/ok")
    health = _wait_status(strata, "hc", "unhealthy")
    assert health["Status"] == "unhealthy" and int(health["FailingStreak"]) >= 2  # type: ignore[call-overload]
    assert "No such file or directory" in health["Log"][-1]["Output"]  # type: ignore[index]
    assert strata("ps", "--format", "{{.Status}}").stdout.endswith(" (unhealthy)\n")
    assert len(health["Log"]) <= 5  # type: ignore[arg-type]


@pytest.mark.runtime
def test_no_healthcheck_and_plain_containers_have_no_health(strata: Strata, busybox_image: str) -> None:
    strata("create", "--name", "plain", busybox_image, "true")
    strata("create", "--name", "none", "--no-healthcheck", busybox_image, "true")
    doc = json.loads(strata("inspect", "plain").stdout)[0]
    assert "Health" not in doc["State"] and "Healthcheck" not in doc["Config"]
    assert strata("inspect", "-f", "{{json .Config.Healthcheck}}", "none").stdout == '{"Test":["NONE"]}\n'


@pytest.mark.runtime
@pytest.mark.parametrize("flags", [
    ["--health-cmd", "true", "--health-interval", "2s", "--health-timeout", "1m30s", "--health-retries", "4",
     "--health-start-period", "500ms"],
    ["--no-healthcheck"], ["--health-retries", "2"],
])
def test_healthcheck_config_matches_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                           docker_busybox: str, flags: list[str]) -> None:
    fmt = "{{json .Config.Healthcheck}}"
    ours_id = strata("create", *flags, busybox_image, "true").stdout.strip()
    theirs_id = dockerd.run("create", *flags, docker_busybox, "true").stdout.strip()
    try:
        assert strata("inspect", "-f", fmt, ours_id).stdout == dockerd.run("inspect", "-f", fmt, theirs_id).stdout
    finally:
        dockerd.run("rm", theirs_id, check=False)


@pytest.mark.runtime
@pytest.mark.parametrize("flags", [
    ["--no-healthcheck", "--health-cmd", "true"], ["--health-retries", "-1"], ["--health-interval=-1s"],
    ["--health-timeout", "5"],
])
def test_bad_health_flags_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                                       flags: list[str]) -> None:
    _refused_as_docker(strata, busybox_image, dockerd, docker_busybox, flags)


@pytest.mark.runtime
def test_image_healthcheck(strata: Strata, busybox_image: str, busybox_tar: Path) -> None:
    strata("import", "-c", 'CMD ["/bin/sh"]', "-c", "HEALTHCHECK --interval=1s --retries=1 CMD cat /etc/passwd",
           str(busybox_tar), "hc-image:1")
    strata("run", "-d", "--name", "from-image", "hc-image:1", "sleep", "300")
    strata("run", "-d", "--name", "disabled", "--no-healthcheck", "hc-image:1", "sleep", "300")
    strata("run", "-d", "--name", "overridden", "--health-cmd", "exit 1", "hc-image:1", "sleep", "300")
    cfg = json.loads(strata("inspect", "-f", "{{json .Config.Healthcheck}}", "overridden").stdout)
    assert cfg == {"Test": ["CMD-SHELL", "exit 1"], "Interval": 1_000_000_000, "Retries": 1}
    assert _wait_status(strata, "from-image", "healthy")["Status"] == "healthy"
    assert _wait_status(strata, "overridden", "unhealthy")["Status"] == "unhealthy"
    assert "Health" not in json.loads(strata("inspect", "disabled").stdout)[0]["State"]
    status = dict(line.split(" ", 1) for line in strata("ps", "--format", "{{.Names}} {{.Status}}").stdout.splitlines())
    assert status["from-image"].endswith("(healthy)") and status["overridden"].endswith("(unhealthy)")
    assert "(" not in status["disabled"]
