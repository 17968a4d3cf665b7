"""The push side of "no credential crosses origins" (issue 11, item 5, reviewed again): an upload whose
``Location`` names another host, a chunk ``PATCH`` sent on, and a manifest ``PUT`` redirected with 307
all reach the other host without the user's password, as Go's client (hence Docker) sends them."""

from __future__ import annotations

import base64
import os

from strata.digest import digest_bytes
from strata.distribution.client import RegistryClient
from strata.distribution.credentials import Credentials

from .test_credential_redirects import NO_CERTS, SECRET, UNAUTHORIZED, _leaks
from .trapserver import Reply, Seen, TrapServer

GOOD = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()


def _registry(elsewhere: str) -> object:
    """Basic auth; uploads start here and continue at ``elsewhere``; manifest PUTs are sent there too."""

    def route(seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != GOOD:
            return 401, {"WWW-Authenticate": 'Basic realm="trap"'}, UNAUTHORIZED
        if seen.method == "POST" and "/blobs/uploads/" in seen.path:
            return 202, {"Location": f"http://{elsewhere}/upload/1?_state=x", "Range": "0-0"}, b""
        if seen.method == "PUT" and "/manifests/" in seen.path:
            return 307, {"Location": f"http://{elsewhere}/manifest"}, b""
        return 200, {"Content-Type": "application/json"}, b"{}"

    return route


def _storage(seen: Seen) -> Reply:
    if seen.method == "PATCH":
        return 202, {"Location": "/upload/1?_state=y", "Range": "0-99"}, b""
    return 201, {"Docker-Content-Digest": "sha256:" + "0" * 64}, b""


def test_upload_and_manifest_sent_to_another_host_carry_no_password() -> None:
    small, big = os.urandom(100), os.urandom(3 << 20)
    with TrapServer(_storage) as other:
        with TrapServer(_registry(other.host)) as reg, RegistryClient(  # type: ignore[arg-type]
            reg.host, Credentials("alice", SECRET), config=NO_CERTS
        ) as c:
            c.upload_blob("r", digest_bytes(small), len(small), lambda: iter([small]))
            c.upload_blob("r", digest_bytes(big), len(big), lambda: iter([big]), chunk_size=1 << 20)
            c.put_manifest("r", "v1", b'{"schemaVersion":2}', "application/vnd.oci.image.manifest.v1+json")
        assert any(s.headers.get("Authorization") == GOOD for s in reg.seen)  # the registry got them
    methods = sorted({s.method for s in other.seen})
    assert methods == ["PATCH", "PUT"], methods
    assert any(s.path == "/manifest" and s.method == "PUT" for s in other.seen)
    assert _leaks(other) == [] and all("Authorization" not in s.headers for s in other.seen)
