"""Security limits of the registry (issue 11): idle and slow connections cannot stop it (items 8),
abandoned uploads are purged by default and metrics stay off the API port (item 14)."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.helpers import Client, ServerProcess, ServerThread, free_port
from strata.server.config import UploadPurgeConfig, build_config


def _config(tmp_path: Path, **sections: Any) -> Path:
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({"version": 0.1, **sections}))
    return cfg


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.socket()
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    return s


def _closed_within(s: socket.socket, seconds: float, drip: bytes = b"") -> float | None:
    """Seconds until the server closed ``s`` (None if it stayed open), sending ``drip`` every 0.25 s."""
    started = time.monotonic()
    s.settimeout(0.25)
    while time.monotonic() - started < seconds:
        try:
            if drip:
                s.sendall(drip)
            if s.recv(1024) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    return None


def _status(port: int, source: str = "127.0.0.1") -> int:
    with _connect(port, source) as s:
        s.settimeout(10)
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return int(s.recv(4096).split(b" ", 2)[1])


def test_slow_and_silent_connections_are_cut_off(tmp_path: Path) -> None:
    cfg = _config(tmp_path, http={"headertimeout": "1s"})
    with ServerProcess(tmp_path / "root", cfg) as srv:
        silent = _connect(srv.port)
        slow = _connect(srv.port)
        slow.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        # cut at 1 s; the bound only tells it from the 30 s default, with room for a loaded machine
        took = _closed_within(slow, 15, drip=b"X-Slow: 1\r\n")
        assert took is not None and took < 10, took
        assert _closed_within(silent, 10) is not None
        # a client that sends its request in time is served as ever
        assert _status(srv.port) == 200
        silent.close()
        slow.close()


def test_slow_second_request_on_a_kept_alive_connection_is_cut_off(tmp_path: Path) -> None:
    cfg = _config(tmp_path, http={"headertimeout": "30s", "idletimeout": "1s"})
    with ServerProcess(tmp_path / "root", cfg) as srv:
        s = _connect(srv.port)
        s.settimeout(5)
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        took = _closed_within(s, 15, drip=b"X-Slow: 1\r\n")
        assert took is not None and took < 10, took  # the 1 s idle timeout, not the 30 s header timeout
        s.close()


def _held_open(port: int, n: int, deadline: float) -> list[socket.socket]:
    """``n`` connections the server keeps open. The server counts a closed connection (the start-up probe's)
    until its loop gets to the close, late on a loaded machine: try again until then, never past ``deadline``."""
    while True:
        held = [_connect(port) for _ in range(n)]
        time.sleep(0.2)
        if [_closed_within(s, 0.3) for s in held] == [None] * n:
            return held
        for s in held:
            s.close()
        assert time.monotonic() < deadline, f"{n} connections were never all kept open"
        time.sleep(0.2)


def _served_again(port: int, deadline: float) -> int:
    """The status of a request from 127.0.0.1 once the server has counted a closed connection as gone."""
    while True:
        try:
            return _status(port)
        except (OSError, IndexError):  # closed at once (a reset, or no reply): still counted as open
            assert time.monotonic() < deadline, "a closed connection stayed counted"
            time.sleep(0.1)


def test_connections_per_client_address_are_capped(tmp_path: Path) -> None:
    cfg = _config(tmp_path, http={"maxconnsperclient": 4, "headertimeout": "30s"})
    with ServerProcess(tmp_path / "root", cfg) as srv:
        held = _held_open(srv.port, 4, time.monotonic() + 60)
        extra = _connect(srv.port)
        assert _closed_within(extra, 10) is not None
        # other clients are served meanwhile
        assert _status(srv.port, "127.0.0.2") == 200
        held.pop().close()
        assert _served_again(srv.port, time.monotonic() + 60) == 200
        for s in [extra, *held]:
            s.close()


@contextlib.contextmanager
def _server_with_nofile(tmp_path: Path, soft: int, hard: int) -> Iterator[subprocess.Popen[bytes]]:
    port = free_port()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "strata.server", "serve", "--addr", f"127.0.0.1:{port}",
                             "--root", str(tmp_path / "root")], stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit)
    proc.port = port  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 60  # a server's start on a loaded machine
        while True:
            try:
                _status(port)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_many_idle_connections_do_not_stop_the_registry(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"hard open-file limit {hard} too low to test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    held: list[socket.socket] = []
    try:
        with _server_with_nofile(tmp_path, 256, 4096) as proc:
            port = proc.port  # type: ignore[attr-defined]
            for i in range(600):  # 600 idle connections from 6 addresses, each under the per-client cap
                held.append(_connect(port, f"127.0.1.{i % 6 + 1}"))
            time.sleep(0.5)
            assert proc.poll() is None
            assert _status(port, "127.0.2.1") == 200
            limits = Path(f"/proc/{proc.pid}/limits").read_text()
            assert any(line.startswith("Max open files") and line.split()[3:5] == ["4096", "4096"]
                       for line in limits.splitlines()), limits
    finally:
        for s in held:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_abandoned_uploads_are_purged_by_default(tmp_path: Path) -> None:
    assert build_config({}).uploadpurging == UploadPurgeConfig(enabled=True, age=168 * 3600.0, interval=24 * 3600.0,
                                                                dryrun=False)
    root = tmp_path / "reg"
    purging = {"age": "1s", "interval": "1s"}
    raw = {"storage": {"filesystem": {"rootdirectory": str(root)}, "maintenance": {"uploadpurging": purging}}}
    with ServerThread(raw) as reg:
        r = reg.request("POST", "/v2/app/blobs/uploads/")
        assert r.status == 202
        location = r.header("Location") or ""
        assert reg.get(location).status == 204
        deadline = time.monotonic() + 60
        while reg.get(location).status != 404:
            assert time.monotonic() < deadline, "the abandoned upload was never purged"
            time.sleep(0.2)
        assert list((root / "docker/registry/v2/repositories/app/_uploads").iterdir()) == []


def test_upload_purging_can_be_disabled_or_dry_run(tmp_path: Path) -> None:
    for purging in ({"enabled": False, "age": "1s", "interval": "1s"}, {"dryrun": True, "age": "1s", "interval": "1s"}):
        raw = {"storage": {"inmemory": {}, "maintenance": {"uploadpurging": purging}}}
        with ServerThread(raw) as reg:
            location = reg.request("POST", "/v2/app/blobs/uploads/").header("Location") or ""
            time.sleep(2.5)
            assert reg.get(location).status == 204, purging


def test_metrics_are_served_on_the_debug_address_only(tmp_path: Path) -> None:
    debug_port = free_port()
    cfg = _config(tmp_path, http={"debug": {"addr": f"127.0.0.1:{debug_port}",
                                            "prometheus": {"enabled": True, "path": "/metrics"}}})
    with ServerProcess(tmp_path / "root", cfg) as srv:
        assert srv.get("/v2/").status == 200
        assert srv.get("/metrics").status == 404
        debug = Client("127.0.0.1", debug_port)
        m = debug.get("/metrics")
        assert m.status == 200 and 'strata_registry_http_requests_total{route="other",method="GET",code="200"}' in \
            m.body.decode(), m.body[:500]
        assert debug.get("/debug/health").status == 200
    cfg = _config(tmp_path)
    with ServerProcess(tmp_path / "root2", cfg) as srv:
        assert srv.get("/metrics").status == 404  # no debug address: no metrics anywhere
