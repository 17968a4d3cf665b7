"""Optional per-client request rate limiting: one token bucket per client address.

Configured under ``http.ratelimit`` (off unless ``rate`` is above zero)::

    http:
      ratelimit:
        rate: 50      # requests per second a client may sustain (tokens added per second)
        burst: 100    # how many requests a client may make at once (bucket size; default: rate)

A request that finds its client's bucket empty is answered ``429 TOOMANYREQUESTS`` with a
``Retry-After`` header (whole seconds until the next token). Health endpoints are never limited
(metrics are served on the debug server, which has no limiter). Clients are told apart by their peer address; buckets of idle clients are dropped
once there are more than ``max_clients``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["EXEMPT_PATHS", "RateLimiter", "retry_after_header"]

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


def retry_after_header(wait: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))
