"""``RegistryClient``: the whole registry API of one registry -- its session (endpoint, auth, requests),
manifests, blobs, uploads and the paged listings (tags, catalog)."""

from __future__ import annotations

import json
from urllib.parse import urljoin

from strata.distribution.client.blobs import BlobsAPI
from strata.distribution.client.manifests import MAX_MANIFEST_SIZE, ManifestsAPI
from strata.distribution.client.uploads import UploadsAPI
from strata.errors import TransportError

__all__ = ["RegistryClient"]

_MAX_PAGES = 10000


def _next_link(header: str) -> str:
    for part in header.split(","):
        if 'rel="next"' in part or "rel=next" in part:
            start, end = part.find("<"), part.find(">")
            if start != -1 and end > start:
                return part[start + 1 : end]
    return ""


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
        for _ in range(_MAX_PAGES):
            resp = self.request("GET", url, scopes=scopes)
            data = self.check(resp, 200).drain(MAX_MANIFEST_SIZE)
            try:
                obj = json.loads(data)
            except ValueError:
                raise TransportError(f"invalid JSON from {url}") from None
            out += [str(x) for x in (obj.get(key) or [])]
            nxt = _next_link(resp.header("Link"))
            if not nxt:
                break
            url = urljoin(resp.url, nxt)
        return out
