"""``http.workers``: pre-forked workers on one port (SO_REUSEPORT), uploads spread over them, a killed
worker replaced, SIGTERM stopping all, and the configurations that cannot be shared refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from server.helpers import Client, free_port, random_blob, sha
from strata.server.config import ConfigError, build_config
from strata.server.workers import worker_config, worker_count

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _listeners(port: int) -> int:
    """LISTEN sockets on 127.0.0.1:port (every worker has its own with SO_REUSEPORT)."""
    needle = f"0100007F:{port:04X}"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == needle and fields[3] == "0A":
            count += 1
    return count


class Workers:
    def __init__(self, tmp: Path, raw: dict[str, object]) -> None:
        self.port = free_port()
        raw = {**raw, "http": {"addr": f"127.0.0.1:{self.port}", **raw.get("http", {})}}  # type: ignore[dict-item]
        cfg = tmp / "config.yml"
        cfg.write_text(yaml.safe_dump(raw))
        self.log = tmp / "server.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "strata", "registry", "serve", "--config", str(cfg)],
                                         stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": SRC})
        self.client = Client("127.0.0.1", self.port)
        self.seen: set[int] = set()  # every worker pid observed, killed at close whatever happened

    def wait_listening(self, n: int) -> None:
        deadline = time.monotonic() + 60  # Python workers' start on a loaded machine
        while _listeners(self.port) != n or len(_children(self.proc.pid)) != n:
            self.seen.update(_children(self.proc.pid))
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, (self.log.read_text(), _listeners(self.port))
            time.sleep(0.05)
        self.seen.update(_children(self.proc.pid))

    def close(self) -> None:
        workers = self.seen | set(_children(self.proc.pid))
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in workers:  # never leave a worker behind, whatever happened to the supervisor
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path, {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "root")}}, "http": {"workers": 2}})
    try:
        w.wait_listening(2)
        yield w
    finally:
        w.close()


def _chunked_upload(c: Client, repo: str, data: bytes) -> None:
    """POST, two PATCHes and PUT, each on a new connection (so on any worker)."""
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status == 202, r.body
    loc = r.header("Location")
    half = len(data) // 2
    for start, piece in ((0, data[:half]), (half, data[half:])):
        r = c.request("PATCH", str(loc), body=piece, headers={"Content-Range": f"{start}-{start + len(piece) - 1}"})
        assert r.status == 202, r.body
    r = c.request("PUT", f"{loc}?digest={sha(data)}")
    assert r.status == 201, r.body


def test_uploads_spread_over_workers_complete(workers: Workers) -> None:
    blobs = [random_blob(300_000 + i) for i in range(12)]
    for data in blobs:
        _chunked_upload(workers.client, "w/app", data)
    for data in blobs:
        r = workers.client.get(f"/v2/w/app/blobs/{sha(data)}")
        assert r.status == 200 and r.body == data


def test_a_killed_worker_is_replaced_and_sigterm_stops_all(workers: Workers) -> None:
    first = _children(workers.proc.pid)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 60  # a new worker's start on a loaded machine
    while _listeners(workers.port) != 1 and first[0] in _children(workers.proc.pid):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert workers.client.get("/v2/").status == 200  # the other worker answers
    while not (len(_children(workers.proc.pid)) == 2 and first[0] not in _children(workers.proc.pid)):
        assert time.monotonic() < deadline, workers.log.read_text()
        time.sleep(0.05)
    workers.wait_listening(2)
    _chunked_upload(workers.client, "w/again", random_blob(50_000))
    now = _children(workers.proc.pid)
    workers.proc.send_signal(signal.SIGTERM)
    assert workers.proc.wait(20) == 0
    for pid in now:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert _listeners(workers.port) == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"storage": {"inmemory": {}}, "http": {"workers": 2}}, "http.workers above 1 needs shared storage"),
        ({"storage": {"inmemory": {}}, "http": {"workers": "many"}}, "invalid http.workers: 'many' is not a number"),
        ({"storage": {"inmemory": {}}, "http": {"workers": 0}}, "invalid http.workers: 0 (between 1 and 64, or auto)"),
        ({"storage": {"s3": {"bucket": "b"}}, "http": {"workers": 2}}, "No region parameter provided"),
    ],
)
def test_unshareable_configurations_are_refused(tmp_path: Path, raw: dict[str, object], message: str) -> None:
    w = Workers(tmp_path, raw)
    try:
        assert w.proc.wait(30) == 1
        assert f"Error: {message}" in w.log.read_text()
    finally:
        w.close()


def test_worker_shares() -> None:
    cfg = build_config({"http": {"workers": "auto", "ratelimit": {"rate": 10, "burst": 5}}, "gc": {"interval": "1h"}})
    assert worker_count(cfg) == min(os.cpu_count() or 1, 64)
    first, second = worker_config(cfg, 0, 2), worker_config(cfg, 1, 2)
    assert (first.gc.interval, second.gc.interval) == (3600.0, 0.0)
    assert (second.ratelimit.rate, second.ratelimit.burst) == (5.0, 3)
    with pytest.raises(ConfigError):
        worker_count(build_config({"http": {"workers": True}}))
    assert worker_count(build_config({})) == 1


def test_workers_stop_when_the_supervisor_is_killed(workers: Workers) -> None:
    pids = _children(workers.proc.pid)
    workers.proc.kill()  # SIGKILL: no chance to stop the workers itself
    workers.proc.wait(10)
    deadline = time.monotonic() + 60
    while any(_running(pid) for pid in pids):
        assert time.monotonic() < deadline, pids
        time.sleep(0.05)
    assert _listeners(workers.port) == 0


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
