"""Logging as Docker's json-file driver: ``--log-opt max-size/max-file`` rotation, the ``none`` driver,
``--log-opt labels=/env=`` attrs and ``logs --details``, ``logs --since/--until`` (RFC 3339, unix
timestamps, durations); Docker's errors; side by side with Docker 20.10."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd
from strata.container.logopts import entry_time, log_config, parse_log_time
from strata.container.logs import JsonLogWriter, log_files, read_entries
from strata.errors import StrataError

LOOP = "i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); done"


def test_log_times_as_docker_parses_them() -> None:
    now = 1_700_000_000.0
    assert parse_log_time("1h", "since", now) == now - 3600
    assert parse_log_time("1h30m", "since", now) == now - 5400
    assert parse_log_time("1700000000", "since", now) == 1_700_000_000
    assert parse_log_time("1700000000.5", "since", now) == 1_700_000_000.5
    assert parse_log_time("2023-11-14T22:13:20Z", "since", now) == 1_700_000_000
    assert parse_log_time("2023-11-14T23:13:20+01:00", "since", now) == 1_700_000_000
    assert parse_log_time("2023-11-14T22:13:20.25Z", "since", now) == 1_700_000_000.25
    assert parse_log_time("2023-11-14", "until", now) == datetime(2023, 11, 14).astimezone().timestamp()
    with pytest.raises(StrataError, match='invalid value for "since": failed to parse value as time or duration: "x"'):
        parse_log_time("x", "since", now)
    assert entry_time("2023-11-14T22:13:20.123456789Z") == 1_700_000_000_123_456_789


def test_log_config_checks() -> None:
    assert log_config(None, [], "run") == {"Type": "json-file", "Config": {}}
    assert log_config("json-file", ["max-size=1k", "max-file=3"], "run") == {
        "Type": "json-file", "Config": {"max-file": "3", "max-size": "1k"}}
    for driver, opts, message in (
        ("bogus", [], 'error looking up logging plugin bogus: plugin "bogus" not found'),
        (None, ["foo=bar"], "unknown log opt 'foo' for json-file log driver"),
        (None, ["max-size=abc"], "failed to initialize logging driver: invalid size: 'abc'"),
        (None, ["max-size"], "failed to initialize logging driver: invalid size: ''"),
        (None, ["max-file=0"], "failed to initialize logging driver: max-file cannot be less than 1"),
        ("none", ["max-size=1k"], "invalid logging opts for driver none.\nSee 'strata run --help'."),
    ):
        with pytest.raises(StrataError) as info:
            log_config(driver, opts, "run")
        assert (str(info.value), info.value.exit_code) == (message, 125)


def test_writer_rotates_as_docker(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = JsonLogWriter(path, max_size=200, max_files=3)
    for i in range(20):
        w.write("stdout", f"line{i}\n".encode())
    w.close()
    assert log_files(path) == [Path(f"{path}.2"), Path(f"{path}.1"), path]
    assert all(p.stat().st_size <= 200 + 100 for p in log_files(path))
    texts = [e.text for e in read_entries(path)]
    assert texts == [f"line{i}\n" for i in range(20 - len(texts), 20)] and 3 <= len(texts) < 20
    assert [e.text for e in read_entries(path, tail=2)] == ["line18\n", "line19\n"]
    single = tmp_path / "one-json.log"
    w = JsonLogWriter(single, max_size=100, max_files=1, attrs={"a": "b"})
    for i in range(5):
        w.write("stderr", f"x{i}\n".encode())
    w.close()
    entries = list(read_entries(single))
    assert log_files(single) == [single] and entries[-1].text == "x4\n" and entries[-1].attrs == {"a": "b"}
    assert json.loads(single.read_text().splitlines()[-1])["attrs"] == {"a": "b"}


@pytest.mark.runtime
def test_rotation_none_driver_and_details(strata: Strata, busybox_image: str) -> None:
    out = strata("run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", busybox_image,
                 "sh", "-c", LOOP).stdout
    assert out.splitlines()[-1] == "line99"
    logs = strata("logs", "rot").stdout.splitlines()
    assert logs == [f"line{i}" for i in range(100 - len(logs), 100)] and 25 < len(logs) < 45
    doc = json.loads(strata("inspect", "rot").stdout)[0]
    assert doc["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "1k"}}
    assert sorted(p.name[-2:] for p in Path(doc["LogPath"]).parent.glob("*-json.log*")) == [".1", ".2", "og"]
    assert strata("logs", "--tail", "1", "--details", "rot").stdout == " line99\n"
    assert strata("run", "--name", "quiet", "--log-driver", "none", busybox_image, "echo", "hi").stdout == "hi\n"
    res = strata("logs", "quiet", check=False)
    assert (res.returncode, res.stderr) == (1, "Error: configured logging driver does not support reading\n")
    strata("run", "--name", "det", "--log-opt", "labels=a", "-l", "a=b c", "-e", "X=1", "--log-opt", "env=X",
           busybox_image, "echo", "hi")
    assert strata("logs", "--details", "det").stdout == "X=1,a=b+c hi\n"


@pytest.mark.runtime
def test_since_and_until(strata: Strata, busybox_image: str) -> None:
    # a line is stamped when its monitor reads it, late on a loaded machine (a fixed gap between the two lines
    # could be used up by the first one's lateness): the second is printed only once the first was logged,
    # and the cut is halfway between their stamps
    strata("run", "-d", "--name", "times", busybox_image, "sh", "-c",
           "echo first; until [ -e /tmp/go ]; do sleep 0.1; done; echo second")
    deadline = time.monotonic() + 60
    while strata("logs", "times").stdout != "first\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    strata("exec", "times", "touch", "/tmp/go")
    assert strata("wait", "times").stdout == "0\n"
    stamps = strata("logs", "-t", "times").stdout.split()
    first, second = entry_time(stamps[0]) / 1e9, entry_time(stamps[2]) / 1e9
    assert second - first > 0.01, stamps
    middle = (first + second) / 2
    cut = datetime.fromtimestamp(middle, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert strata("logs", "--since", cut, "times").stdout == "second\n"
    assert strata("logs", "--until", cut, "times").stdout == "first\n"
    assert strata("logs", "--since", f"{middle:.3f}", "times").stdout == "second\n"
    assert strata("logs", "--since", "1h", "--tail", "1", "times").stdout == "second\n"
    assert strata("logs", "--until", "1h", "times").stdout == ""
    assert strata("logs", "--since", str(int(time.time()) + 60), "times").stdout == ""
    res = strata("logs", "--until", "bogus", "times", check=False)
    assert (res.returncode, res.stderr) == (
        1, 'Error: invalid value for "until": failed to parse value as time or duration: "bogus"\n')


@pytest.mark.runtime
def test_logs_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str) -> None:
    name = "parity-logs"
    flags = ["--log-opt", "max-size=1k", "--log-opt", "max-file=3", "--log-opt", "labels=a", "-l", "a=b"]
    try:
        strata("run", "--name", name, *flags, busybox_image, "sh", "-c", LOOP)
        dockerd.run("run", "--name", name, *flags, docker_busybox, "sh", "-c", LOOP)
        for args in (["--tail", "3"], ["--details", "--tail", "2"], ["--since", "1h", "--tail", "2"],
                     ["--until", "1h"], ["--since", "2030-01-01T00:00:00Z"], ["--since", "bogus"]):
            ours, theirs = strata("logs", *args, name, check=False), dockerd.run("logs", *args, name, check=False)
            assert (ours.returncode, ours.stdout, ours.stderr.removeprefix("Error: ")) == (
                theirs.returncode, theirs.stdout, theirs.stderr.removeprefix("Error response from daemon: ")), args
        fmt = "{{json .HostConfig.LogConfig}}"
        assert strata("inspect", "-f", fmt, name).stdout == dockerd.run("inspect", "-f", fmt, name).stdout
        strata("run", "--name", name + "-none", "--log-driver", "none", busybox_image, "true")
        dockerd.run("run", "--name", name + "-none", "--log-driver", "none", docker_busybox, "true")
        fmt = "{{.LogPath}}"
        assert strata("inspect", "-f", fmt, name + "-none").stdout == dockerd.run("inspect", "-f", fmt, name + "-none").stdout
        ours, theirs = strata("logs", name + "-none", check=False), dockerd.run("logs", name + "-none", check=False)
        assert (ours.returncode, ours.stderr.removeprefix("Error: ")) == (
            theirs.returncode, theirs.stderr.removeprefix("Error response from daemon: "))
    finally:
        dockerd.run("rm", "-f", name, name + "-none", check=False)
