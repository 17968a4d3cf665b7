"""The blob descriptor cache in Redis (``storage.cache.blobdescriptor: redis``), shared by replicas.

Two kinds of entries, each with a time to live so that a change made behind the registry's back is
seen again in time: ``blob:<digest>`` (size and modification time of a stored blob) and
``link:<repo>:<digest>`` (the repository may serve that blob). A descriptor is never cached while a
garbage collection sweeps (the GC lock's exclusive key exists): the sweep drops what it deletes, and
no request may put it back from a read made just before the delete. Read failures fall back to the
object store; a failure to drop an entry is raised (a stale entry could claim a deleted blob exists).
"""

from __future__ import annotations

import logging

import redis

from strata.digest import Digest

__all__ = ["RedisDescriptorCache"]

log = logging.getLogger("strata.registry.cache")

_PUT_UNLESS_SWEEPING = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


class RedisDescriptorCache:
    """Blob descriptors and repository links under ``<namespace>:``; see the module docstring."""

    def __init__(self, client: redis.Redis, namespace: str, ttl: int = 3600) -> None:
        self.client = client
        self.ns = namespace
        self.ttl = ttl
        self._put = client.register_script(_PUT_UNLESS_SWEEPING)
        self._sweep_key = f"{namespace}:gc:exclusive"

    def _blob(self, d: Digest) -> str:
        return f"{self.ns}:blob:{d}"

    def _link(self, repo: str, d: Digest) -> str:
        return f"{self.ns}:link:{repo}:{d}"

    def _set(self, key: str, value: str) -> None:
        try:
            self._put(keys=[key, self._sweep_key], args=[value, self.ttl])
        except redis.RedisError as e:
            log.warning("blob descriptor cache: %s", e)

    def get(self, d: Digest) -> tuple[int, float] | None:
        """(size, mtime) of a cached blob, or None."""
        try:
            raw = self.client.get(self._blob(d))
        except redis.RedisError as e:
            log.warning("blob descriptor cache: %s", e)
            return None
        if not isinstance(raw, bytes):
            return None
        try:
            size, mtime = raw.split(b" ", 1)
            return int(size), float(mtime)
        except ValueError:
            return None

    def put(self, d: Digest, size: int, mtime: float) -> None:
        self._set(self._blob(d), f"{size} {mtime}")

    def drop(self, d: Digest) -> None:
        self.client.delete(self._blob(d))

    def linked(self, repo: str, d: Digest) -> bool:
        try:
            return bool(self.client.exists(self._link(repo, d)))
        except redis.RedisError as e:
            log.warning("blob descriptor cache: %s", e)
            return False

    def link(self, repo: str, d: Digest) -> None:
        self._set(self._link(repo, d), "1")

    def unlink(self, repo: str, d: Digest) -> None:
        self.client.delete(self._link(repo, d))
