"""Optional per-client request rate limiting: one token bucket per client address.

Configured under ``http.ratelimit`` (off unless ``rate`` is above zero)::

    http:
      ratelimit:
        rate: 50      # requests per second a client may sustain (tokens added per second)
        burst: 100    # how many requests a client may make at once (bucket size; default: rate)

A request that finds its client's bucket empty is answered ``429 TOOMANYREQUESTS`` with a
``Retry-After`` header (whole seconds until the next token). Health endpoints are never limited
(metrics are served on the debug server, which has no limiter). Clients are told apart by their peer address
(behind a trusted proxy, ``http.trustedproxies``, by the address it forwards: :func:`client_key`); buckets of
idle clients are dropped once there are more than ``max_clients``. With a ``redis`` section the buckets live in
Redis, one per client for every worker and replica (:class:`RedisRateLimiter`).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

__all__ = ["EXEMPT_PATHS", "RateLimiter", "RedisRateLimiter", "client_key", "retry_after_header"]

log = logging.getLogger("strata.registry.ratelimit")

EXEMPT_PATHS = frozenset({"/debug/health", "/healthz"})


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by client; ``take(key)`` spends one token or says how long to wait."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be above zero")
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self.max_clients = max(1, max_clients)
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """0.0 when the request may go ahead; otherwise the seconds until a token is available."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            self._make_room(now)
            bucket = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        self._buckets[key] = bucket  # most recently used last
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_clients:
            return
        refill_time = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.stamp >= refill_time]:
            del self._buckets[key]  # full again: forgetting it changes nothing
        while len(self._buckets) >= self.max_clients:
            self._buckets.popitem(last=False)  # least recently seen


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def client_key(
    remote: str | None, forwarded_for: str | None, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str:
    """Whose bucket a request spends from: the peer's address, or, when the peer is a trusted proxy
    (``http.trustedproxies``: a load balancer in front of the replicas), the right-most address of
    ``X-Forwarded-For`` that is not a trusted proxy itself (what a client wrote further left is not
    believed)."""
    peer = remote or ""

    def is_trusted(text: str) -> bool:
        ip = _ip(text)
        return ip is not None and any(ip in net for net in trusted)

    if not forwarded_for or not is_trusted(peer):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not is_trusted(hop):
            return hop if _ip(hop) is not None else peer
    return peer


def retry_after_header(wait: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))


_TAKE = """
local t = redis.call('TIME'); local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter(RateLimiter):
    """The same token buckets kept in Redis, so every worker and replica spends from one bucket per
    client (Redis' clock; an idle bucket expires once it would be full). When Redis cannot be reached
    the process falls back to its own buckets for that request, and logs it."""

    def __init__(self, client: redis.Redis, namespace: str, rate: float, burst: int) -> None:
        super().__init__(rate, burst)
        self.client = client
        self.ns = namespace
        self._take = client.register_script(_TAKE)

    def take(self, key: str) -> float:
        try:
            return float(self._take(keys=[f"{self.ns}:ratelimit:{key}"], args=[self.rate, self.burst]))
        except (redis.RedisError, ValueError) as e:
            log.warning("rate limit in redis: %s; using this process's buckets", e)
            return super().take(key)
