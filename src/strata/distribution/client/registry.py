"""``RegistryClient``: the whole registry API of one registry -- its session (endpoint, auth, requests),
manifests, blobs, uploads and the paged listings (tags, catalog)."""

from __future__ import annotations

from urllib.parse import urljoin

from strata.distribution.client.blobs import BlobsAPI
from strata.distribution.client.manifests import MAX_MANIFEST_SIZE, ManifestsAPI
from strata.distribution.client.uploads import UploadsAPI
from strata.errors import StrataError, TransportError
from strata.image.spec import load_json

__all__ = ["MAX_LISTING_BYTES", "RegistryClient"]

_MAX_PAGES = 10000
MAX_LISTING_BYTES = 32 << 20
"""A tag list or catalog, all pages together, holds at most this much JSON (a million names fit): a
registry that pages without end cannot fill the client's memory."""


def _next_link(header: str) -> str:
    for part in header.split(","):
        if 'rel="next"' in part or "rel=next" in part:
            start, end = part.find("<"), part.find(">")
            if start != -1 and end > start:
                return part[start + 1 : end]
    return ""


def _listing(data: bytes, key: str, url: str) -> list[str]:
    """The names a tag list or catalog page holds under ``key``; anything else is an error."""
    try:
        obj = load_json(data, "listing")
    except StrataError:
        obj = None
    names = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(names, list | None):
        obj = None
    if not isinstance(obj, dict):
        raise TransportError(f"invalid JSON from {url}")
    return [str(x) for x in names or []]


class RegistryClient(ManifestsAPI, BlobsAPI, UploadsAPI):
    """HTTP client for one registry. ``registry`` is a reference's domain (``docker.io``, ``localhost:5000``)."""

    def ping(self) -> None:
        """``GET /v2/`` with the current credentials; raises ``Unauthorized`` if they are refused."""
        resp = self.request("GET", "/v2/", scopes=[])
        self.check(resp, 200).drain()

    def tags(self, repo: str) -> list[str]:
        return self._paged(f"/v2/{repo}/tags/list", "tags", self.scopes(repo))

    def catalog(self) -> list[str]:
        return self._paged("/v2/_catalog", "repositories", ["registry:catalog:*"])

    def _paged(self, path: str, key: str, scopes: list[str]) -> list[str]:
        out: list[str] = []
        url = path
        received = 0
        for _ in range(_MAX_PAGES):
            resp = self.request("GET", url, scopes=scopes)
            data = self.check(resp, 200).drain(MAX_MANIFEST_SIZE)
            received += len(data)
            if received > MAX_LISTING_BYTES:
                raise TransportError(f"listing of {path} is larger than {MAX_LISTING_BYTES >> 20} MiB: stopped")
            out += _listing(data, key, url)
            nxt = _next_link(resp.header("Link"))
            if not nxt:
                break
            url = urljoin(resp.url, nxt)
        return out
