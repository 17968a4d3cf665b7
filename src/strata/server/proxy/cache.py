"""The pull-through cache: manifests and blobs of proxied repositories, fetched once and kept.

- A manifest by digest is immutable: served locally once stored. A tag is served locally while it is
  younger than the upstream's ``ttl`` (its ``current/link`` time), else re-checked with a HEAD upstream
  (the manifest is fetched again only when the digest moved). An upstream that is down, or refuses,
  leaves a cached tag served as it is.
- A blob not linked in the repository is asked of the upstream (a HEAD: the upstream decides what a
  repository holds, even when the bytes are here for another one), then downloaded once however many
  clients ask meanwhile (:mod:`strata.server.proxy.blobfetch`), verified, stored and linked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from strata.digest import Digest
from strata.distribution import errcodes as ec
from strata.distribution.client import ManifestResult
from strata.errors import (
    BlobUnknown,
    DigestMismatch,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
    StrataError,
    TransportError,
)
from strata.server.handlers.base import APIError, ServerState, parse_digest
from strata.server.names import is_valid_tag
from strata.server.proxy.blobfetch import BlobFetch, download, stream_fetch
from strata.server.proxy.config import ProxyConfig
from strata.server.proxy.upstream import UpstreamClient
from strata.server.storage import paths
from strata.server.storage.driver import PathNotFound
from strata.server.storage.manifests import ManifestInvalid, parse_manifest
from strata.server.storage.registry import Repository

__all__ = ["ProxyCache"]

log = logging.getLogger("strata.registry.proxy")
_UPSTREAM_ERRORS = (RegistryError, TransportError, DigestMismatch, OSError)
_NOT_THERE = (ManifestUnknown, BlobUnknown, NameUnknown)


def _upstream_error(up: UpstreamClient, e: BaseException) -> APIError:
    """An upstream failure as the client sees it (the upstream's name, never its credentials)."""
    return APIError(ec.UNKNOWN, f"upstream {up.name}: {e}", {"upstream": up.name}, status=502)


class ProxyCache:
    def __init__(self, config: ProxyConfig, state: ServerState) -> None:
        self.config = config
        self.state = state
        # quick questions (HEADs, manifests) never wait behind long blob downloads
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="strata-proxy")
        self.downloads = ThreadPoolExecutor(max_workers=16, thread_name_prefix="strata-proxy-blob")
        self.clients = {up: UpstreamClient(up, self.executor, self.downloads) for up in config.upstreams}
        self._flights: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._fetches: dict[tuple[str, Digest], BlobFetch] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        state.metrics.proxy_enabled = True

    def route(self, name: str) -> tuple[UpstreamClient, str] | None:
        routed = self.config.route(name)
        return None if routed is None else (self.clients[routed[0]], routed[1])

    def proxied(self, name: str) -> bool:
        return self.config.route(name) is not None

    async def close(self, app: web.Application | None = None) -> None:
        for task in list(self._tasks) + list(self._flights.values()):
            task.cancel()
        for client in self.clients.values():
            client.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.downloads.shutdown(wait=False, cancel_futures=True)

    async def _once(self, key: tuple[str, str], work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` once for every concurrent caller asking the same ``key``."""
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._flights[key] = task
            task.add_done_callback(lambda _t: self._flights.pop(key, None))
        await asyncio.shield(task)

    # ------------------------------------------------------------------ manifests

    async def manifest(self, repo: Repository, reference: str, method: str) -> None:
        """Bring the manifest ``reference`` of a proxied repository up to date in local storage."""
        routed = self.route(repo.name)
        if routed is None:
            return
        kind = "manifest"
        if ":" in reference:
            d = parse_digest(reference)
            if repo.manifests.exists(d):
                self._hit(kind, method)
                return
        elif not is_valid_tag(reference):
            return  # the handler answers MANIFEST_UNKNOWN
        elif self._fresh(repo, reference, routed[0].upstream.ttl):
            self._hit(kind, method)
            return
        await self._once((repo.name, reference), lambda: self._refresh(repo, reference, method, *routed))

    def _fresh(self, repo: Repository, tag: str, ttl: float) -> bool:
        current = repo.tags.get(tag)
        if current is None or not repo.manifests.exists(current):
            return False
        try:
            checked = repo.tags.driver.stat(paths.tag_current_link(repo.name, tag)).mtime
        except PathNotFound:
            return False
        return time.time() - checked < ttl

    async def _refresh(self, repo: Repository, reference: str, method: str, up: UpstreamClient, remote: str) -> None:
        tag = None if ":" in reference else reference
        cached = repo.tags.get(tag) if tag is not None else None
        if cached is not None and not repo.manifests.exists(cached):
            cached = None
        try:
            if cached is not None and tag is not None and await up.manifest_digest(remote, tag) == cached:
                repo.tags.driver.touch(paths.tag_current_link(repo.name, tag))  # checked now: fresh for ttl
                self._hit("manifest", method)
                return
            result = await up.manifest(remote, reference)
        except _UPSTREAM_ERRORS as e:
            if cached is not None:
                log.warning("upstream %s: %s; serving the cached %s:%s", up.name, e, repo.name, tag)
                self._hit("manifest", method)
                return
            if isinstance(e, _NOT_THERE):
                raise APIError(ec.MANIFEST_UNKNOWN, detail={"tag" if tag else "digest": reference})
            raise _upstream_error(up, e)
        await self._store_manifest(repo, result, tag, up)
        self._miss("manifest", method)

    async def _store_manifest(self, repo: Repository, result: ManifestResult, tag: str | None, up: UpstreamClient) -> None:
        try:
            parsed = parse_manifest(result.raw, result.media_type or None)
        except ManifestInvalid as e:
            raise _upstream_error(up, StrataError(f"invalid manifest: {e}"))
        async with self.state.gc_lock.shared():
            d = repo.manifests.put(result.raw, result.digest.algorithm)
            if tag is not None:
                repo.tags.tag(tag, d)
            if parsed.subject is not None:
                repo.manifests.add_referrer(parsed.subject, d)

    # ------------------------------------------------------------------ tags

    async def tags(self, repo: Repository) -> list[str] | None:
        """The tag list of a proxied repository, as distribution's proxy answers it: the upstream's
        (merged with the tags cached here), or only the cached ones when the upstream cannot answer.
        None when ``repo`` is not proxied; raises ``NAME_UNKNOWN`` when neither side knows it."""
        routed = self.route(repo.name)
        if routed is None:
            return None
        up, remote = routed
        local = repo.tags.all() if self.state.registry.exists(repo.name) else []
        try:
            remote_tags = await up.tags(remote)
        except _UPSTREAM_ERRORS as e:
            if not isinstance(e, _NOT_THERE):
                log.warning("upstream %s: tags of %s: %s; serving the cached ones", up.name, repo.name, e)
            if not self.state.registry.exists(repo.name):
                raise APIError(ec.NAME_UNKNOWN, detail={"name": repo.name})
            return local
        return sorted(set(local).union(t for t in remote_tags if is_valid_tag(t)))

    # ------------------------------------------------------------------ blobs

    async def blob(
        self, request: web.Request, repo: Repository, d: Digest, actor: str | None = None
    ) -> web.StreamResponse | None:
        """Answer for a blob the proxied repository does not hold yet; None when the handler should
        carry on locally (not proxied, or stored now)."""
        routed = self.route(repo.name)
        if routed is None:
            return None
        up, remote = routed
        key = (repo.name, d)
        fetch = self._fetches.get(key)
        if fetch is None:
            size = await self._blob_size(up, remote, d)
            fetch = self._fetches.get(key)
            if fetch is None:
                if request.method == "HEAD":
                    return _head_response(d, size)
                if await self._adopt_local(repo, d, size):
                    self._hit("blob", request.method)
                    return None
                fetch = self._start(repo, d, size, up, remote)
                self._miss("blob", request.method)
            else:
                self._hit("blob", request.method)
        else:
            self._hit("blob", request.method)
        if request.method == "HEAD":
            return _head_response(d, fetch.size)
        if request.headers.get("Range"):
            await fetch.wait()  # a ranged read is served from storage once the blob is there
            if fetch.error is not None:
                raise _upstream_error(up, fetch.error)
            return None
        self.state.notifier.blob_event("pull", repo.name, d, fetch.size or 0, request, actor)
        return await stream_fetch(request, self.state.registry, fetch, _blob_headers(d))

    async def _blob_size(self, up: UpstreamClient, remote: str, d: Digest) -> int | None:
        try:
            size = await up.blob_size(remote, d)
        except _UPSTREAM_ERRORS as e:
            raise _upstream_error(up, e)
        if size is None:
            raise APIError(ec.BLOB_UNKNOWN, detail={"digest": str(d)})
        return size or None  # no Content-Length: unknown, streamed chunked

    async def _adopt_local(self, repo: Repository, d: Digest, size: int | None) -> bool:
        """The bytes are here already (for another repository) and the upstream has them for this one."""
        info = self.state.registry.blobs.stat(d)
        if info is None or (size is not None and info.size != size):
            return False
        async with self.state.gc_lock.shared():
            if self.state.registry.blobs.stat(d) is None:
                return False
            repo.blobs.link(d)
        return True

    def _start(self, repo: Repository, d: Digest, size: int | None, up: UpstreamClient, remote: str) -> BlobFetch:
        uid = repo.uploads.create()
        fetch = BlobFetch(d, size, repo.uploads.data_path(uid))
        key = (repo.name, d)
        self._fetches[key] = fetch
        task = asyncio.ensure_future(self._download(repo, uid, fetch, up, remote))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return fetch

    async def _download(self, repo: Repository, uid: str, fetch: BlobFetch, up: UpstreamClient, remote: str) -> None:
        loop = asyncio.get_running_loop()
        metrics = self.state.metrics

        def notify(written: int) -> None:
            loop.call_soon_threadsafe(_progress, written)

        def _progress(written: int) -> None:
            metrics.proxy_upstream_bytes += max(0, written - fetch.written)
            fetch.progress(written)

        writer = repo.uploads.writer(uid)
        error: BaseException | None = None
        try:
            reader = up.open_blob(remote, fetch.digest, fetch.size, lambda n: None)
            await up.call(download, reader, writer, notify, long=True)
            await asyncio.sleep(0)  # the last progress callbacks run before the move
            async with self.state.gc_lock.shared():
                self.state.registry.blobs.adopt(fetch.path, fetch.digest)
                repo.blobs.link(fetch.digest)
        except BaseException as e:
            error = e
            log.warning("upstream %s: blob %s of %s not cached: %s", up.name, fetch.digest, repo.name, e)
            if not isinstance(e, Exception):
                raise
        finally:
            writer.close()
            repo.uploads.remove(uid)
            self._fetches.pop((repo.name, fetch.digest), None)
            fetch.finish(error)

    # ------------------------------------------------------------------ metrics

    def _hit(self, kind: str, method: str) -> None:
        if method == "GET":
            self.state.metrics.cache_hit(kind)

    def _miss(self, kind: str, method: str) -> None:
        if method == "GET":
            self.state.metrics.cache_miss(kind)

    def local_hit(self, name: str, kind: str, method: str) -> None:
        """A proxied repository served something it already held."""
        if self.proxied(name):
            self._hit(kind, method)


def _blob_headers(d: Digest) -> dict[str, str]:
    return {
        "Docker-Content-Digest": str(d),
        "Content-Type": "application/octet-stream",
        "ETag": f'"{d}"',
    }


def _head_response(d: Digest, size: int | None) -> web.Response:
    headers = _blob_headers(d)
    if size is not None:
        headers["Content-Length"] = str(size)
    return web.Response(status=200, headers=headers)
