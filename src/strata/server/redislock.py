"""The GC lock across replicas and workers, in Redis: shared by blob commits and manifest puts,
exclusive for a garbage-collection sweep, every hold a lease that ends when its holder dies.

* ``<ns>:gc:readers`` is a sorted set: one member per shared hold, scored by when its lease ends
  (Redis' own clock, so the replicas' clocks do not matter); a holder renews while it holds.
* ``<ns>:gc:exclusive`` holds the sweeping GC's token with a time to live. Once it is set no new
  shared hold is granted (a GC is never starved by a stream of pushes); the GC sweeps when every
  live shared hold has been released or its lease has run out, and renews its key while sweeping.
  A GC that lost its key (it stalled for longer than the lease) must stop: :meth:`RedisGCLease.held`.

Every step is one Lua script, so each decision is atomic in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator

import redis

from strata.errors import StrataError

__all__ = ["LeaseLost", "RedisGCLease", "RedisUploadLock"]

_NOW = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

_SHARED = _NOW + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""

_RENEW_SHARED = _NOW + "return redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])"

_EXCLUSIVE = _NOW + """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return redis.call('ZCARD', KEYS[2])
"""

_RENEW_EXCLUSIVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

_RELEASE_EXCLUSIVE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLost(StrataError):
    """The GC's exclusive lease ran out while it swept."""


class RedisGCLease:
    """See the module docstring. ``lease`` is in seconds; waits poll every ``poll`` seconds."""

    def __init__(self, client: redis.Redis, namespace: str, lease: float = 60.0, poll: float = 0.05) -> None:
        self.client = client
        self.exclusive_key = f"{namespace}:gc:exclusive"
        self.readers_key = f"{namespace}:gc:readers"
        self.lease_ms = int(lease * 1000)
        self.poll = poll
        self._shared = client.register_script(_SHARED)
        self._renew_shared = client.register_script(_RENEW_SHARED)
        self._exclusive = client.register_script(_EXCLUSIVE)
        self._renew_exclusive = client.register_script(_RENEW_EXCLUSIVE)
        self._release_exclusive = client.register_script(_RELEASE_EXCLUSIVE)
        self._lost = threading.Event()

    def try_shared(self, token: str) -> bool:
        keys = [self.exclusive_key, self.readers_key]
        return bool(self._shared(keys=keys, args=[token, self.lease_ms]))

    async def _renew_while_held(self, token: str) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            await asyncio.to_thread(self._renew_shared, keys=[self.readers_key], args=[token, self.lease_ms])

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        token = secrets.token_hex(12)
        while not await asyncio.to_thread(self.try_shared, token):
            await asyncio.sleep(self.poll)
        renew = asyncio.create_task(self._renew_while_held(token))
        try:
            yield
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            await asyncio.to_thread(self.client.zrem, self.readers_key, token)

    def _keep_exclusive(self, token: str, stop: threading.Event) -> None:
        while not stop.wait(self.lease_ms / 3000):
            try:
                ok = self._renew_exclusive(keys=[self.exclusive_key], args=[token, self.lease_ms])
            except redis.RedisError:
                ok = 0
            if not ok:
                self._lost.set()
                return

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        token = secrets.token_hex(12)
        keys = [self.exclusive_key, self.readers_key]
        try:
            while self._exclusive(keys=keys, args=[token, self.lease_ms]) != 0:
                time.sleep(self.poll)
            self._lost.clear()
            stop = threading.Event()
            keeper = threading.Thread(target=self._keep_exclusive, args=(token, stop), daemon=True)
            keeper.start()
            try:
                yield
            finally:
                stop.set()
                keeper.join()
        finally:
            with contextlib.suppress(redis.RedisError):
                self._release_exclusive(keys=[self.exclusive_key], args=[token])

    def held(self) -> None:
        """Raise ``LeaseLost`` if the exclusive lease ran out (call before each deletion)."""
        if self._lost.is_set():
            raise LeaseLost("the GC lock's lease in Redis ran out; stopping the sweep")


_RELEASE_IF_MINE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_RENEW_IF_MINE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""


class RedisUploadLock:
    """One writer at a time per upload across replicas: a key with a lease, renewed while it writes.

    Without it two replicas could each append a chunk at the same offset: the object store keeps the
    last, while the other replica's in-memory hash describes bytes that are not there."""

    def __init__(self, client: redis.Redis, namespace: str, lease: float = 30.0) -> None:
        self.client = client
        self.ns = namespace
        self.lease_ms = int(lease * 1000)
        self._release = client.register_script(_RELEASE_IF_MINE)
        self._renew = client.register_script(_RENEW_IF_MINE)

    def _key(self, uid: str) -> str:
        return f"{self.ns}:upload:{uid}"

    def acquire(self, uid: str) -> str | None:
        """A token when this process may write the upload now; None when another one is writing."""
        token = secrets.token_hex(12)
        return token if self.client.set(self._key(uid), token, nx=True, px=self.lease_ms) else None

    def renew(self, uid: str, token: str) -> bool:
        return bool(self._renew(keys=[self._key(uid)], args=[token, self.lease_ms]))

    def release(self, uid: str, token: str) -> None:
        with contextlib.suppress(redis.RedisError):
            self._release(keys=[self._key(uid)], args=[token])
