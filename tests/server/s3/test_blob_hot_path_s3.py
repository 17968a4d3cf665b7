"""The blob GET hot path on S3 (issue 14's benchmark): a small blob (an image config) costs two S3
requests once its bytes were read (the repository's link and the blob's HEAD, which vouch for the
immutable bytes kept in memory), Range requests included; a deleted blob is not served from memory."""

from __future__ import annotations

from server.helpers import push_blob, random_blob, sha
from server.s3.servers import S3RegistryProcess

from .test_event_loop_s3 import HoldingRelay, _client, slow_s3

__all__ = ["slow_s3"]


def test_small_blob_get_is_two_s3_requests_once_read(slow_s3: tuple[S3RegistryProcess, HoldingRelay]) -> None:
    reg, relay = slow_s3
    c = _client(reg)
    data = random_blob(3000)
    d = push_blob(c, "hot", data)
    assert c.get(f"/v2/hot/blobs/{d}").body == data
    before = relay.requests
    for _ in range(3):
        r = c.get(f"/v2/hot/blobs/{d}")
        assert r.status == 200 and r.body == data and r.header("Docker-Content-Digest") == d
    assert relay.requests - before == 6
    part = c.get(f"/v2/hot/blobs/{d}", headers={"Range": "bytes=100-199"})
    assert part.status == 206 and part.body == data[100:200]
    assert part.header("Content-Range") == f"bytes 100-199/{len(data)}"
    bad = c.get(f"/v2/hot/blobs/{d}", headers={"Range": "bytes=5000-"})
    assert bad.status == 416 and bad.header("Content-Range") == f"bytes */{len(data)}"


def test_a_deleted_small_blob_is_not_served_from_memory(slow_s3: tuple[S3RegistryProcess, HoldingRelay]) -> None:
    reg, _ = slow_s3
    c = _client(reg)
    data = random_blob(2000)
    d = push_blob(c, "hot", data)
    assert c.get(f"/v2/hot/blobs/{d}").body == data
    assert c.request("DELETE", f"/v2/hot/blobs/{d}").status == 202  # the repository's link goes
    assert c.get(f"/v2/hot/blobs/{d}").status == 404
    big = random_blob(600 << 10)  # above the small-blob size: streamed as before
    assert sha(c.get(f"/v2/hot/blobs/{push_blob(c, 'hot', big)}").body) == sha(big)
