"""Manifests and indexes on a registry: GET (size-bounded, digest-verified), HEAD, PUT, DELETE."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from strata.digest import Digest, digest_bytes
from strata.distribution.auth import repository_scope
from strata.distribution.client.errors import describe
from strata.distribution.client.session import Session
from strata.distribution.client.transport import NETWORK_ERRORS, Response
from strata.errors import DigestMismatch, TransportError
from strata.image import mediatypes as mt

__all__ = ["MANIFEST_ACCEPT", "MAX_MANIFEST_SIZE", "ManifestResult", "ManifestsAPI"]

MAX_MANIFEST_SIZE = 4 << 20
MANIFEST_ACCEPT = ", ".join([mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST, mt.OCI_MANIFEST])


@dataclass(frozen=True)
class ManifestResult:
    raw: bytes
    media_type: str
    digest: Digest


def _verified(raw: bytes, reference: str, resp: Response) -> Digest:
    """The digest of ``raw``; checked against the reference (when a digest) or the registry's header."""
    got = digest_bytes(raw)
    expected: Digest | None = None
    if Digest.is_valid(reference):
        expected = Digest.parse(reference)
    elif Digest.is_valid(resp.header("Docker-Content-Digest")):
        expected = Digest.parse(resp.header("Docker-Content-Digest"))
    if expected is not None:
        if expected.algorithm != "sha256":
            got = digest_bytes(raw, expected.algorithm)
        if got != expected:
            raise DigestMismatch(f"manifest verification failed for digest {expected}")
    return got


class ManifestsAPI(Session):
    def get_manifest(self, repo: str, reference: str, accept: str = MANIFEST_ACCEPT) -> ManifestResult:
        """Fetch a manifest or index; verifies its digest when asked by digest or told one."""
        resp = self.request(
            "GET", f"/v2/{repo}/manifests/{quote(reference)}", scopes=self.scopes(repo), headers={"Accept": accept}
        )
        self.check(resp, 200)
        declared = resp.header("Content-Length")
        if declared.isdigit() and int(declared) > MAX_MANIFEST_SIZE:
            resp.close()
            raise TransportError(f"manifest too big: {declared} bytes (limit {MAX_MANIFEST_SIZE})")
        try:
            raw = resp.drain(MAX_MANIFEST_SIZE)
        except NETWORK_ERRORS as e:
            raise TransportError(f"reading manifest {reference} in {self.registry}/{repo}: {describe(e)}") from e
        if len(raw) > MAX_MANIFEST_SIZE:
            raise TransportError(f"manifest too big: more than {MAX_MANIFEST_SIZE} bytes")
        media_type = resp.header("Content-Type").split(";")[0].strip()
        return ManifestResult(raw, media_type, _verified(raw, reference, resp))

    def head_manifest(self, repo: str, reference: str) -> tuple[Digest, int, str] | None:
        resp = self.head(f"/v2/{repo}/manifests/{quote(reference)}", self.scopes(repo), {"Accept": MANIFEST_ACCEPT})
        if resp is None:
            return None
        dg = resp.header("Docker-Content-Digest")
        size = resp.header("Content-Length")
        return (
            Digest.parse(dg) if Digest.is_valid(dg) else Digest("sha256", ""),
            int(size) if size.isdigit() else 0,
            resp.header("Content-Type"),
        )

    def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> Digest:
        resp = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{quote(reference)}",
            scopes=self.scopes(repo),
            headers={"Content-Type": media_type},
            body=raw,
        )
        self.check(resp, 200, 201, 202).drain()
        dg = resp.header("Docker-Content-Digest")
        return Digest.parse(dg) if Digest.is_valid(dg) else digest_bytes(raw)

    def delete_manifest(self, repo: str, digest: Digest) -> None:
        resp = self.request("DELETE", f"/v2/{repo}/manifests/{digest}", scopes=[repository_scope(repo, "delete")])
        self.check(resp, 200, 202).drain()
