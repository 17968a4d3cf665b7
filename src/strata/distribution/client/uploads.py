"""Blob uploads: cross-repository mounts, monolithic ``PUT``, ``PATCH`` (one stream or ``Content-Range``
chunks) closed by a ``PUT``, and uploads of a stream whose digest is computed on the way."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote, urlencode, urljoin

from strata.digest import Digest, hasher
from strata.distribution.client.session import Session
from strata.errors import TransportError

__all__ = ["UploadsAPI"]

Chunks = Callable[[], Iterable[bytes]]


def _finish_url(location: str, digest: Digest) -> str:
    sep = "&" if "?" in location else "?"
    return f"{location}{sep}digest={quote(str(digest))}"


def _constant(piece: bytes) -> Chunks:
    return lambda: [piece]


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup a stream into pieces of ``size`` bytes (the last may be shorter)."""
    buf = bytearray()
    for c in chunks:
        buf += c
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


class UploadsAPI(Session):
    def mount_blob(self, repo: str, digest: Digest, from_repo: str) -> str | None:
        """Try a cross-repository mount. True-ish: None when mounted, else the upload URL opened instead."""
        q = urlencode({"mount": str(digest), "from": from_repo})
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?{q}", scopes=self.scopes(repo))
        self.check(resp, 201, 202).drain()
        if resp.status == 201:
            return None
        return urljoin(resp.url, resp.header("Location"))

    def start_upload(self, repo: str) -> str:
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scopes=self.scopes(repo))
        self.check(resp, 202).drain()
        loc = resp.header("Location")
        if not loc:
            raise TransportError("registry did not return an upload location")
        return urljoin(resp.url, loc)

    def upload_blob(
        self,
        repo: str,
        digest: Digest,
        size: int,
        chunks: Chunks,
        *,
        location: str | None = None,
        monolithic_limit: int = 1 << 20,
        chunk_size: int = 0,
    ) -> None:
        """Upload a blob of known digest and size. ``chunks()`` yields its bytes (callable again to restart).

        Up to ``monolithic_limit`` bytes go in the final ``PUT``; larger blobs are sent with ``PATCH``
        (one request, or ``chunk_size`` pieces with ``Content-Range``) and closed with an empty ``PUT``."""
        loc = location or self.start_upload(repo)
        scopes = self.scopes(repo)
        if size <= monolithic_limit:
            headers = {"Content-Type": "application/octet-stream"}
            resp = self.request("PUT", _finish_url(loc, digest), scopes=scopes, headers=headers, body=chunks, length=size)
        else:
            loc = self._patch_all(loc, scopes, chunks, size, chunk_size)
            resp = self.request("PUT", _finish_url(loc, digest), scopes=scopes)
        self.check(resp, 201, 204).drain()

    def _patch_all(self, loc: str, scopes: list[str], chunks: Chunks, size: int | None, chunk_size: int) -> str:
        if not chunk_size or size is None:
            return self._patch(loc, scopes, chunks, 0, size)
        offset = 0
        it = iter(_rechunk(chunks(), chunk_size))
        while True:
            piece = next(it, None)
            if piece is None:
                return loc
            loc = self._patch(loc, scopes, _constant(piece), offset, len(piece))
            offset += len(piece)

    def _patch(self, loc: str, scopes: list[str], chunks: Chunks, offset: int, length: int | None) -> str:
        headers = {"Content-Type": "application/octet-stream"}
        if length is not None and length > 0:
            headers["Content-Range"] = f"{offset}-{offset + length - 1}"
        resp = self.request("PATCH", loc, scopes=scopes, headers=headers, body=chunks, length=length)
        self.check(resp, 202, 204).drain()
        new = resp.header("Location")
        return urljoin(resp.url, new) if new else loc

    def upload_stream(self, repo: str, chunks: Iterable[bytes], *, location: str | None = None) -> tuple[Digest, int]:
        """Upload bytes whose digest is not known in advance (computed while streaming)."""
        h = hasher()
        total = 0

        def counted() -> Iterator[bytes]:
            nonlocal total
            for c in chunks:
                h.update(c)
                total += len(c)
                yield c

        used = False

        def once() -> Iterable[bytes]:
            nonlocal used
            if used:
                raise TransportError("upload stream cannot be restarted")
            used = True
            return counted()

        loc = location or self.start_upload(repo)
        loc = self._patch(loc, self.scopes(repo), once, 0, None)
        digest = Digest("sha256", h.hexdigest())
        resp = self.request("PUT", _finish_url(loc, digest), scopes=self.scopes(repo))
        self.check(resp, 201, 204).drain()
        return digest, total
