"""One upstream registry, reached through strata's own registry client (its auth, TLS and redirect rules).

The client is synchronous: every call here runs in the proxy's thread pool (``call``), never on the
event loop. Credentials are the upstream's own (``proxy.username``/``password``) and the client sends
them to that origin only; no mirror of strata's own config is consulted (a mirror pointing back at
this registry would loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from strata.digest import Digest
from strata.distribution.client import BlobReader, ManifestResult, RegistryClient
from strata.distribution.credentials import Credentials
from strata.distribution.hosts import DOCKER_HUB, HostsConfig, normalize_host
from strata.errors import ManifestUnknown, TransportError
from strata.server.proxy.config import Upstream

__all__ = ["UpstreamClient"]

T = TypeVar("T")


class UpstreamClient:
    def __init__(self, upstream: Upstream, executor: Executor, downloads: Executor) -> None:
        self.upstream = upstream
        insecure = (upstream.netloc,) if upstream.scheme == "http" else ()
        hosts = HostsConfig(insecure_registries=insecure, mirrors=())
        self.client = RegistryClient(
            upstream.netloc,
            Credentials(upstream.username, upstream.password),
            config=hosts,
            timeout=upstream.timeout,
            max_attempts=2,
        )
        self._hub = normalize_host(upstream.netloc) == DOCKER_HUB
        self._executor = executor
        self._downloads = downloads

    @property
    def name(self) -> str:
        return self.upstream.netloc

    def remote_name(self, name: str) -> str:
        """Docker Hub keeps official images under ``library/``."""
        return f"library/{name}" if self._hub and "/" not in name else name

    async def call(self, fn: Callable[..., T], *args: object, long: bool = False) -> T:
        """``fn(*args)`` in a worker thread (``long``: a blob download, in the pool kept for those)."""
        loop = asyncio.get_running_loop()
        pool = self._downloads if long else self._executor
        return await loop.run_in_executor(pool, lambda: self._on_configured_scheme(fn, *args))

    def _on_configured_scheme(self, fn: Callable[..., T], *args: object) -> T:
        """An ``https://`` upstream is never used over plain HTTP (the client would fall back to it on
        loopback), so neither its credentials nor its content travel unprotected."""
        if self.upstream.scheme == "https" and self.client.endpoint.scheme != "https":
            raise TransportError(f"{self.upstream.remoteurl} does not speak TLS: refusing plain HTTP")
        return fn(*args)

    async def manifest(self, repo: str, reference: str) -> ManifestResult:
        return await self.call(self.client.get_manifest, self.remote_name(repo), reference)

    async def manifest_digest(self, repo: str, tag: str) -> Digest | None:
        """The digest a tag points to upstream (a HEAD), None when the upstream does not say."""
        head = await self.call(self.client.head_manifest, self.remote_name(repo), tag)
        if head is None:
            raise ManifestUnknown("manifest unknown: manifest unknown", status=404)
        if not head[0].hex:
            return None
        return head[0]

    async def tags(self, repo: str) -> list[str]:
        """The upstream's tag list of ``repo`` (every page)."""
        return await self.call(self.client.tags, self.remote_name(repo))

    async def blob_size(self, repo: str, d: Digest) -> int | None:
        """The blob's size upstream (a HEAD); None when the upstream does not have it."""
        return await self.call(self.client.head_blob, self.remote_name(repo), d)

    def open_blob(self, repo: str, d: Digest, size: int | None, on_read: Callable[[int], None]) -> BlobReader:
        return self.client.open_blob(self.remote_name(repo), d, size, on_read)

    def close(self) -> None:
        self.client.cancel()
        self.client.close()
