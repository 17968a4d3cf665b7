"""What the S3 driver adds to the common driver suite (tests/server/test_driver.py): distribution's
parameters and their errors, multipart writers (append by server-side copy, roll-backs, bounded
memory), presigned redirects, root directories and failures that must not look like a missing file."""

from __future__ import annotations

import os
import secrets
import socket
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from strata.server.config import ConfigError
from strata.server.storage import PathNotFound, StorageError
from strata.server.storage.s3 import S3Driver
from strata.server.storage.s3options import parse_options

from .radosgw import Radosgw, session_radosgw

MiB = 1 << 20


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bucket": "b"}, "No region parameter provided"),
        ({"region": "us-east-1"}, "No bucket parameter provided"),
        ({"chunksize": 1024}, "the chunksize 1024 parameter should be a number that is larger than or equal to 5242880"),
        ({"chunksize": "ten"}, "chunksize parameter must be an integer, ten invalid"),
        ({"secure": "maybe"}, "The secure parameter should be a boolean"),
        ({"v4auth": "nope"}, "The v4auth parameter should be a boolean"),
        ({"multipartcopythresholdsize": 6 << 30},
         "the multipartcopythresholdsize 6442450944 parameter should be a number between 0 and 5368709120 (inclusive)"),
        ({"multipartcopychunksize": 1}, "the multipartcopychunksize 1 parameter should be a number between "
                                        "5242880 and 5368709120 (inclusive)"),
        ({"storageclass": "COLD"}, "The storageclass parameter must be one of"),
    ],
)  # fmt: skip
def test_parameters_are_checked_as_distribution_does(params: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"bucket": "b", "region": "us-east-1"}
    if "bucket" in params or "region" in params:
        base = {}
    with pytest.raises(ConfigError) as err:
        parse_options({**base, **params})
    assert str(err.value).startswith(message)


def test_parameters_accept_strings_and_pick_defaults() -> None:
    o = parse_options({"bucket": "b", "region": "r", "regionendpoint": "rgw:7480", "secure": "false",
                       "chunksize": "6291456", "rootdirectory": "/x/"}, {"disable": "true"})  # fmt: skip
    assert (o.chunksize, o.secure, o.forcepathstyle, o.redirect) == (6 << 20, False, True, False)
    assert o.endpoint_url == "http://rgw:7480"
    d = parse_options({"bucket": "b", "region": "r"})
    assert (d.chunksize, d.multipartcopythresholdsize, d.forcepathstyle, d.redirect) == (10 << 20, 32 << 20, False, True)
    assert d.endpoint_url is None


@pytest.fixture
def rgw() -> Radosgw:
    return session_radosgw()


@pytest.fixture
def s3(rgw: Radosgw) -> Iterator[S3Driver]:
    drv = S3Driver.from_parameters(rgw.s3_params(rootdirectory=f"/u{secrets.token_hex(4)}", chunksize=5 * MiB))
    yield drv
    try:
        drv.delete("/")
    except PathNotFound:
        pass


def _pending_uploads(s3: S3Driver) -> list[str]:
    resp = s3.bucket.client.list_multipart_uploads(Bucket=s3.bucket.name, Prefix=s3._key("/"))
    return [u["Key"] for u in resp.get("Uploads", [])]


def _write(s3: S3Driver, path: str, data: bytes, append: bool = False) -> None:
    w = s3.writer(path, append=append)
    for i in range(0, len(data), MiB):
        w.write(data[i : i + MiB])
    w.close()


def test_append_to_a_large_object_copies_it_server_side(s3: S3Driver) -> None:
    first, more = os.urandom(6 * MiB), os.urandom(5 * MiB + 7)
    _write(s3, "/f", first)
    _write(s3, "/f", more, append=True)
    assert s3.get_content("/f") == first + more
    assert s3.stat("/f").size == len(first) + len(more)
    assert _pending_uploads(s3) == []


def test_truncate_into_parts_this_writer_sent(s3: S3Driver) -> None:
    data = os.urandom(12 * MiB)
    w = s3.writer("/t")
    w.write(data)  # two parts sent, 2 MiB buffered
    w.truncate(7 * MiB)
    w.write(b"x")
    assert w.size == 7 * MiB + 1
    w.close()
    assert s3.get_content("/t") == data[: 7 * MiB] + b"x"
    assert _pending_uploads(s3) == []


def test_a_failed_append_rolls_back_without_touching_the_object(s3: S3Driver) -> None:
    data = os.urandom(6 * MiB)
    _write(s3, "/r", data)
    before = s3.bucket.head(s3._key("/r"))
    w = s3.writer("/r", append=True)
    w.write(os.urandom(7 * MiB))  # the stored 6 MiB copied into a new upload, one more part sent
    assert s3.get_content("/r") == data  # nothing is visible before close
    w.truncate(6 * MiB)  # what the upload handler does when a PATCH breaks
    w.close()
    assert s3.bucket.head(s3._key("/r")) == before
    w = s3.writer("/r", append=True)
    w.write(os.urandom(MiB))
    w.truncate(3 * MiB)  # back inside the stored bytes
    w.close()
    assert s3.get_content("/r") == data[: 3 * MiB]
    assert _pending_uploads(s3) == []


def test_cancel_and_delete_abort_multipart_uploads(s3: S3Driver) -> None:
    w = s3.writer("/c/data")
    w.write(os.urandom(11 * MiB))
    assert _pending_uploads(s3)
    w.cancel()
    assert _pending_uploads(s3) == []
    with pytest.raises(PathNotFound):
        s3.stat("/c/data")
    s3.put_content("/up/x/startedat", b"1")
    abandoned = s3.writer("/up/x/data")  # a process that died mid-upload never closes it
    abandoned.write(os.urandom(6 * MiB))
    assert _pending_uploads(s3)
    s3.delete("/up")
    assert _pending_uploads(s3) == []


def test_writer_memory_stays_bounded(s3: S3Driver) -> None:
    chunk = os.urandom(MiB)
    tracemalloc.start()
    try:
        w = s3.writer("/big")
        for _ in range(64):
            w.write(chunk)
        w.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert s3.stat("/big").size == 64 * MiB
    # the part being filled and the part in flight (5 MiB each, plus a copy), never the 64 MiB file
    assert peak < 24 * MiB, peak


def test_presigned_redirects(rgw: Radosgw, s3: S3Driver) -> None:
    s3.put_content("/blob", b"secret bytes")
    url = s3.redirect_url("/blob")
    assert url is not None and url.startswith(rgw.endpoint)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"secret bytes"
    s3.put_content("/other", b"other bytes")
    forged = url.replace("/blob?", "/other?")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(forged, timeout=10)
    assert err.value.code == 403
    off = S3Driver.from_parameters(rgw.s3_params(), {"disable": True})
    assert off.redirect_url("/blob") is None


def test_root_directories_do_not_see_each_other(rgw: Radosgw) -> None:
    a = S3Driver.from_parameters(rgw.s3_params(rootdirectory="/iso-a"))
    b = S3Driver.from_parameters(rgw.s3_params(rootdirectory="/iso-a-b"))
    a.put_content("/x", b"a")
    b.put_content("/x", b"b")
    assert a.list("/") == ["/x"] and b.list("/") == ["/x"]
    a.delete("/")
    assert b.get_content("/x") == b"b"
    with pytest.raises(PathNotFound):
        a.get_content("/x")
    b.delete("/")


def test_backend_failures_are_errors_not_missing_files(rgw: Radosgw) -> None:
    """Wrong credentials or a missing bucket must never look like 'not found' (nor like success)."""
    wrong = S3Driver.from_parameters(rgw.s3_params(secretkey="wrong" * 8))
    nobucket = S3Driver.from_parameters(rgw.s3_params(bucket=f"missing-{secrets.token_hex(4)}"))
    for drv, text in ((wrong, "SignatureDoesNotMatch"), (nobucket, "NoSuchBucket")):
        for name, args in (("stat", ("/",)), ("list", ("/",)), ("put_content", ("/k", b"x")), ("get_content", ("/k",))):
            with pytest.raises(StorageError) as err:
                getattr(drv, name)(*args)
            assert not isinstance(err.value, PathNotFound)
            assert str(err.value).startswith("s3aws: ")
        assert text in str(err.value)


def test_a_read_resumes_where_a_broken_connection_left_off(s3: S3Driver) -> None:
    data = os.urandom(12 * MiB)
    s3.put_content("/resume", data)
    with s3.reader("/resume", 1000) as r:
        got = r.read(MiB)
        raw = r.raw  # type: ignore[attr-defined]
        http_response = raw._body._raw_stream._fp  # the connection under boto3's StreamingBody
        http_response.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        rest = r.read()
    assert got + rest == data[1000:]
