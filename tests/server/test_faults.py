"""Bad clients and crashes: disconnects, lying Content-Length, stalled bodies, kill -9 mid-push."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from server.helpers import ServerProcess, ServerThread, push_image, random_blob, sha


def _raw(port: int, head: str, body: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head.encode() + body)
    return s


def _until(check: Callable[[], bool], seconds: float = 30.0) -> None:
    """Poll ``check`` (what the server does after a client left happens late on a loaded machine)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _blob_files(root: Path) -> list[Path]:
    return [p for p in (root / "docker/registry/v2/blobs").rglob("data")] if (root / "docker").exists() else []


def test_disconnect_mid_monolithic_upload(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    with ServerThread({"storage": {"filesystem": {"rootdirectory": str(root)}}}) as reg:
        data = random_blob(1 << 20)
        s = _raw(reg.port, f"POST /v2/dc/blobs/uploads/?digest={sha(data)} HTTP/1.1\r\nHost: x\r\n"
                 f"Content-Length: {len(data)}\r\nContent-Type: application/octet-stream\r\n\r\n", data[:100_000])
        time.sleep(0.2)
        s.close()
        uploads = root / "docker/registry/v2/repositories/dc/_uploads"
        _until(lambda: not uploads.exists() or list(uploads.iterdir()) == [])  # the server cleans up
        assert reg.request("HEAD", f"/v2/dc/blobs/{sha(data)}").status == 404
        assert _blob_files(root) == []
        assert list(uploads.iterdir()) == []
        # the server keeps serving
        push_image(reg, "dc", "ok")


def test_disconnect_mid_patch_rolls_back_chunk(tmp_path: Path) -> None:
    with ServerThread({"storage": {"filesystem": {"rootdirectory": str(tmp_path)}}}) as reg:
        loc = reg.request("POST", "/v2/p/blobs/uploads/").header("Location")
        assert loc
        assert reg.request("PATCH", loc, body=b"a" * 1000).status == 202
        s = _raw(reg.port, f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", b"b" * 2000)
        time.sleep(0.2)
        s.close()
        _until(lambda: reg.get(loc).header("Range") == "0-999")  # rolled back once the server saw the close
        r = reg.get(loc)
        assert r.status == 204 and r.header("Range") == "0-999"
        rest = b"c" * 10
        r = reg.request("PUT", f"{loc}?digest={sha(b'a' * 1000 + rest)}", body=rest)
        assert r.status == 201


def test_content_length_shorter_than_body(tmp_path: Path) -> None:
    with ServerThread({"storage": {"filesystem": {"rootdirectory": str(tmp_path)}}}) as reg:
        loc = reg.request("POST", "/v2/lie/blobs/uploads/").header("Location")
        assert loc
        s = _raw(reg.port, f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", b"0123456789EXTRA-GARBAGE")
        reply = s.recv(65536).decode(errors="replace")
        time.sleep(0.3)
        s.close()
        # the bytes after Content-Length are never taken as upload data: either the 10 bytes were
        # stored and the rest refused as a bad next request, or the whole exchange was refused
        assert reply.split(" ")[1] in ("202", "400")
        got = reg.get(loc).header("Range")
        assert got in ("0-9", "0-0")
        size = 10 if got == "0-9" else 0
        # Content-Range that disagrees with the body is refused and rolled back
        r = reg.request("PATCH", loc, body=b"abc", headers={"Content-Range": f"{size}-{size + 9}"})
        assert r.status == 416, (r.status, r.headers, r.body) and r.codes == ["SIZE_INVALID"]
        assert reg.get(loc).header("Range") == got


def test_stalled_body_times_out_and_server_keeps_serving(tmp_path: Path) -> None:
    raw = {"storage": {"filesystem": {"rootdirectory": str(tmp_path)}}, "http": {"readtimeout": "1s"}}
    with ServerThread(raw) as reg:
        loc = reg.request("POST", "/v2/slow/blobs/uploads/").header("Location")
        assert loc
        s = _raw(reg.port, f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", b"x" * 10)
        t0 = time.monotonic()
        reply = s.recv(65536).decode(errors="replace")
        s.close()
        assert reply.startswith("HTTP/1.1 408") and time.monotonic() - t0 < 15  # 1 s, not the default 120 s
        assert reg.get(loc).header("Range") == "0-0"
        assert reg.get("/v2/").status == 200


def test_kill9_during_push_leaves_no_partial_blob(tmp_path: Path) -> None:
    root = tmp_path / "root"
    data = random_blob(4 << 20)
    with ServerProcess(root) as srv:
        push_image(srv, "k", "before")
        n_before = len(_blob_files(root))
        s = _raw(srv.port, f"POST /v2/k/blobs/uploads/?digest={sha(data)} HTTP/1.1\r\nHost: x\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n", data[: 3 << 20])
        loc = srv.request("POST", "/v2/k/blobs/uploads/").header("Location")
        assert loc
        srv.request("PATCH", loc, body=data[:1 << 20])
        time.sleep(0.3)
        srv.kill9()
        s.close()
    assert len(_blob_files(root)) == n_before
    with ServerProcess(root) as srv:
        assert srv.request("HEAD", f"/v2/k/blobs/{sha(data)}").status == 404
        assert srv.get("/v2/k/manifests/before").status == 200
        # the interrupted chunked upload resumes after the restart (hash state rebuilt from disk)
        r = srv.get(loc)
        assert r.status == 204 and r.header("Range") == f"0-{(1 << 20) - 1}"
        r = srv.request("PUT", f"{loc}?digest={sha(data)}", body=data[1 << 20:])
        assert r.status == 201
        assert srv.get(f"/v2/k/blobs/{sha(data)}").body == data
