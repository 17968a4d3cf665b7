"""A slow object store never stalls the registry's other requests (issue 14): strata on a real radosgw
reached through a loopback relay that can hold S3 traffic. While one request waits on S3, requests
that need no storage (``/v2/``) and requests whose storage answers keep being served."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from server.helpers import Client, push_image, random_blob, sha

from .radosgw import Radosgw, session_radosgw
from .servers import S3RegistryProcess, start_strata_on_s3

pytestmark = pytest.mark.peers
_REQUEST_LINE = re.compile(rb"(?:^|\r\n)(?:GET|HEAD|PUT|POST|DELETE) /\S* HTTP/1\.1\r\n")


class HoldingRelay:
    """TCP relay on loopback to ``upstream``; while ``hold()`` is on, requests to S3 wait in the relay."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.open = threading.Event()
        self.open.set()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.requests = 0  # HTTP requests relayed to S3 (request lines seen)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, gated: bool) -> None:
        try:
            while data := src.recv(65536):
                if gated:
                    self.open.wait()
                    self.requests += len(_REQUEST_LINE.findall(data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if not gated:  # the upstream side ends last: both sockets are done with
                time.sleep(0.1)
                src.close()
                dst.close()

    def close(self) -> None:
        self.closed = True
        self.open.set()
        self.sock.close()


@pytest.fixture
def slow_s3(tmp_path: Path) -> Iterator[tuple[S3RegistryProcess, HoldingRelay]]:
    rgw: Radosgw = session_radosgw()
    ep = urlsplit(rgw.endpoint)
    relay = HoldingRelay((ep.hostname or "127.0.0.1", ep.port or 80))
    try:
        with start_strata_on_s3(rgw, rgw.new_bucket(), tmp_path, redirect=False,
                                regionendpoint=f"http://127.0.0.1:{relay.port}") as reg:  # fmt: skip
            yield reg, relay
    finally:
        relay.close()


def _client(reg: S3RegistryProcess) -> Client:
    host, port = reg.url.rsplit(":", 1)
    return Client(host, int(port))


def _held_request(c: Client, method: str, path: str, out: dict[str, int]) -> threading.Thread:
    def go() -> None:
        out["status"] = c.request(method, path).status

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v2/app/manifests/1", 200),
    ("GET", "/v2/app/manifests/missing", 404),
    ("HEAD", "/v2/app/blobs/{layer}", 200),
    ("GET", "/v2/app/blobs/{layer}", 200),
    ("GET", "/v2/app/tags/list", 200),
    ("POST", "/v2/app/blobs/uploads/", 202),
])  # fmt: skip
def test_requests_are_served_while_s3_is_slow(
    slow_s3: tuple[S3RegistryProcess, HoldingRelay], method: str, path: str, status: int
) -> None:
    reg, relay = slow_s3
    c = _client(reg)
    layer = random_blob(4096)
    push_image(c, "app", "1", [layer])
    relay.open.clear()  # S3 stops answering: the request below waits on storage
    out: dict[str, int] = {}
    held = _held_request(_client(reg), method, path.format(layer=sha(layer)), out)
    time.sleep(0.3)
    try:
        t0 = time.monotonic()
        assert c.request("GET", "/v2/").status == 200  # no storage needed: answered at once
        assert time.monotonic() - t0 < 20.0  # a blocked loop: never until S3 answers (the client's 30 s)
        assert held.is_alive() and "status" not in out  # still waiting on S3
    finally:
        relay.open.set()
    held.join(30)
    assert out.get("status") == status
    assert c.request("GET", "/v2/app/manifests/1").status == 200


def test_client_gone_mid_patch_rolls_back_on_s3(slow_s3: tuple[S3RegistryProcess, HoldingRelay]) -> None:
    """The writer is released (truncated, its lock freed) from a storage thread when the client leaves."""
    reg, _ = slow_s3
    c = _client(reg)
    loc = c.request("POST", "/v2/p/blobs/uploads/").header("Location")
    assert loc
    first = random_blob(3 << 20)
    assert c.request("PATCH", loc, body=first).status == 202
    host, port = reg.url.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {8 << 20}\r\n\r\n".encode() + b"b" * (2 << 20))
    time.sleep(0.5)
    s.close()
    deadline = time.monotonic() + 30  # the release runs in a storage thread: late on a loaded machine
    while c.get(loc).header("Range") != f"0-{len(first) - 1}" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert c.get(loc).header("Range") == f"0-{len(first) - 1}"
    rest = random_blob(1 << 20)
    r = c.request("PUT", f"{loc}?digest={sha(first + rest)}", body=rest)
    assert r.status == 201, (r.status, r.body)
    got = c.get(f"/v2/p/blobs/{sha(first + rest)}")
    assert got.status == 200 and got.body == first + rest


def test_cached_manifest_never_outlives_its_deletion_on_another_replica(tmp_path: Path) -> None:
    """Replica B keeps manifest bytes in memory (S3 round trips saved); a DELETE through replica A is
    still seen at once: the revision link is read from S3 on every GET."""
    rgw = session_radosgw()
    bucket = rgw.new_bucket()
    with start_strata_on_s3(rgw, bucket, tmp_path / "a", redirect=False) as a, \
            start_strata_on_s3(rgw, bucket, tmp_path / "b", redirect=False) as b:  # fmt: skip
        ca, cb = _client(a), _client(b)
        d, body = push_image(ca, "gone", "1")
        for ref in ("1", d, d):
            r = cb.get(f"/v2/gone/manifests/{ref}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            assert r.status == 200 and r.body == body
        assert ca.request("DELETE", f"/v2/gone/manifests/{d}").status == 202
        assert cb.get(f"/v2/gone/manifests/{d}").status == 404
        assert cb.get("/v2/gone/manifests/1").status == 404
        d2, body2 = push_image(ca, "gone", "1")  # retagged through A: B serves the new one
        r = cb.get("/v2/gone/manifests/1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status == 200 and r.body == body2 and r.header("Docker-Content-Digest") == d2


def test_manifest_get_by_digest_is_one_s3_request_once_cached(
    slow_s3: tuple[S3RegistryProcess, HoldingRelay],
) -> None:
    """The revision link is read each time; the immutable bytes it vouches for come from memory."""
    reg, relay = slow_s3
    c = _client(reg)
    d, body = push_image(c, "one", "1")
    assert c.get(f"/v2/one/manifests/{d}").body == body
    before = relay.requests
    for _ in range(3):
        assert c.get(f"/v2/one/manifests/{d}").body == body
    assert relay.requests - before == 3
