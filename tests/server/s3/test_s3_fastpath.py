"""The S3 driver's fast reads (server.storage.s3fastpath): GETs of small objects and HEADs through
reused presigned URLs answer exactly as botocore's calls do, without making them; anything but a
plain answer (a signature S3 refuses, a proxy in the environment) goes to botocore."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from strata.server.storage import PathNotFound
from strata.server.storage.s3 import S3Driver
from strata.server.storage.s3fastpath import Unanswered

from .radosgw import session_radosgw


@pytest.fixture
def s3() -> Iterator[S3Driver]:
    rgw = session_radosgw()
    drv = S3Driver.from_parameters(rgw.s3_params(rootdirectory=f"/f{secrets.token_hex(4)}"))
    yield drv
    try:
        drv.delete("/")
    except PathNotFound:
        pass


class _Counting:
    """botocore's calls that the fast path replaces, counted."""

    def __init__(self, drv: S3Driver, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        client = drv.bucket.client
        for name in ("get_object", "head_object"):
            real = getattr(client, name)

            def counted(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
                self.calls.append(_name)
                return _real(*a, **kw)

            monkeypatch.setattr(client, name, counted)


def test_fast_reads_answer_as_botocore_does_without_calling_it(s3: S3Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.put_content("/a/link", b"sha256:" + b"0" * 64)
    assert s3.bucket.fast is not None
    slow = S3Driver(s3.options)
    slow.bucket.fast = None
    counting = _Counting(s3, monkeypatch)
    for _ in range(2):  # signed once, then the same URL again
        assert s3.get_content("/a/link") == slow.get_content("/a/link") == b"sha256:" + b"0" * 64
        assert s3.stat("/a/link") == slow.stat("/a/link")
        key = s3._key("/a/link")
        assert s3.bucket.head(key) == slow.bucket.head(key)  # size, mtime and ETag alike
    for drv in (s3, slow):
        with pytest.raises(PathNotFound):
            drv.get_content("/a/missing")
        with pytest.raises(PathNotFound):
            drv.stat("/a/missing")
    assert s3.stat("/a").is_dir
    assert counting.calls == []


def test_a_refused_signature_goes_to_botocore_and_is_signed_again(s3: S3Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.put_content("/b/link", b"first")
    assert s3.get_content("/b/link") == b"first"
    fast = s3.bucket.fast
    assert fast is not None
    key = s3._key("/b/link")
    target = fast._targets["GET"][key]
    target.path = target.path.replace("Signature=", "Signature=0")  # S3 answers 403
    counting = _Counting(s3, monkeypatch)
    s3.put_content("/b/link", b"second")
    assert s3.get_content("/b/link") == b"second"
    assert counting.calls == ["get_object"]  # botocore answered the refused one
    assert key not in fast._targets["GET"]
    assert s3.get_content("/b/link") == b"second"
    assert counting.calls == ["get_object"]  # a new URL, fast again


def test_an_endpoint_behind_a_proxy_is_left_to_botocore(s3: S3Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.put_content("/c/link", b"x")
    drv = S3Driver(s3.options)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert drv.bucket.fast is not None
    with pytest.raises(Unanswered):
        drv.bucket.fast.get(drv._key("/c/link"))


def test_a_kept_connection_the_server_closed_is_opened_again(s3: S3Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.put_content("/d/link", b"kept")
    assert s3.get_content("/d/link") == b"kept"
    fast = s3.bucket.fast
    assert fast is not None
    (conn,) = fast._local.conns.values()
    assert conn.sock is not None
    conn.sock.shutdown(socket.SHUT_RDWR)  # as an idle timeout on the server's side leaves it
    counting = _Counting(s3, monkeypatch)
    assert s3.get_content("/d/link") == b"kept"
    assert counting.calls == []
    (again,) = fast._local.conns.values()
    assert again is not conn or again.sock is not None


def test_a_forked_worker_opens_its_own_connection(s3: S3Driver) -> None:
    """A kept socket shared by two processes would mix their answers: a child starts afresh."""
    s3.put_content("/e/link", b"fork")
    assert s3.get_content("/e/link") == b"fork"
    fast = s3.bucket.fast
    assert fast is not None
    (parent_conn,) = fast._local.conns.values()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child reports through the pipe)
        ok = 0
        try:
            ok = int(s3.get_content("/e/link") == b"fork" and parent_conn not in fast._local.conns.values())
        finally:
            os.write(w, bytes([ok]))
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"\x01"
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert s3.get_content("/e/link") == b"fork"
    assert list(fast._local.conns.values()) == [parent_conn]


def test_signature_version_2_reads_fast_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """``v4auth: false`` presigns with S3's older query-string signature; radosgw takes both."""
    params = session_radosgw().s3_params(rootdirectory=f"/v{secrets.token_hex(4)}")
    drv = S3Driver.from_parameters({**params, "v4auth": False})
    try:
        drv.put_content("/v2/link", b"old")
        counting = _Counting(drv, monkeypatch)
        assert drv.get_content("/v2/link") == b"old"
        assert drv.stat("/v2/link").size == 3
        with pytest.raises(PathNotFound):
            drv.get_content("/v2/missing")
        assert counting.calls == []
    finally:
        S3Driver.from_parameters(params).delete("/")  # (radosgw refuses botocore's version 2 listing signature)
