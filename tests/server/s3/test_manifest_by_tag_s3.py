"""A manifest GET by tag on S3 (issue 14's benchmark): the tag's link is read every time; the revision
link behind it is re-read at most once per ``REVISION_TRUST`` (a tag is removed before its manifest
goes), so a steady stream of pulls costs one S3 request each. Digests still read their revision link."""

from __future__ import annotations

import time
from pathlib import Path

from server.helpers import push_image
from server.s3.servers import S3RegistryProcess
from strata.server.storage.manifests import REVISION_TRUST

from .radosgw import session_radosgw
from .servers import start_strata_on_s3
from .test_event_loop_s3 import HoldingRelay, _client, slow_s3

__all__ = ["slow_s3"]
OCI = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


def test_manifest_get_by_tag_is_one_s3_request_while_its_revision_was_just_read(
    slow_s3: tuple[S3RegistryProcess, HoldingRelay],
) -> None:
    reg, relay = slow_s3
    c = _client(reg)
    d, body = push_image(c, "bytag", "1")
    assert c.get("/v2/bytag/manifests/1", headers=OCI).body == body
    before, started = relay.requests, time.monotonic()
    for _ in range(3):
        r = c.get("/v2/bytag/manifests/1", headers=OCI)
        assert r.status == 200 and r.body == body and r.header("Docker-Content-Digest") == d
    elapsed = time.monotonic() - started
    # one request each (the tag); a slow machine may see the window pass once and re-read the revision
    assert relay.requests - before == 3 or (elapsed >= REVISION_TRUST and relay.requests - before <= 6)
    time.sleep(REVISION_TRUST)
    before = relay.requests
    assert c.get("/v2/bytag/manifests/1", headers=OCI).body == body
    assert relay.requests - before == 2  # the window passed: the revision link is read again


def test_a_tag_left_without_its_revision_is_unknown_once_the_window_passes(tmp_path: Path) -> None:
    """The state a DELETE by digest racing a push of the same digest can leave (made here by removing
    the revision link behind the registry's back): unknown by tag once the window passes, by digest."""
    rgw = session_radosgw()
    bucket = rgw.new_bucket()
    with start_strata_on_s3(rgw, bucket, tmp_path, redirect=False) as reg:
        c = _client(reg)
        d, body = push_image(c, "torn", "1")
        assert c.get("/v2/torn/manifests/1", headers=OCI).body == body
        link = f"reg/docker/registry/v2/repositories/torn/_manifests/revisions/sha256/{d.split(':')[1]}/link"
        rgw.client().delete_object(Bucket=bucket, Key=link)
        time.sleep(REVISION_TRUST + 0.1)
        r = c.get("/v2/torn/manifests/1", headers=OCI)
        assert r.status == 404 and b"MANIFEST_UNKNOWN" in r.body
        assert c.get(f"/v2/torn/manifests/{d}", headers=OCI).status == 404
