"""The ``redis`` section (distribution's keys) and the one client every shared-state user takes.

::

    redis:
      addr: 127.0.0.1:6379
      password: secret
      db: 0
      dialtimeout: 10ms
      readtimeout: 10ms
      writetimeout: 10ms
      pool: {maxidle: 16, maxactive: 64, idletimeout: 300s}

    storage:
      cache:
        blobdescriptor: redis      # blob descriptors cached in Redis (``inmemory``: not shared, ignored)

When the section is present, replicas and workers share through Redis: the blob descriptor cache
(with ``storage.cache.blobdescriptor: redis``), the GC lock (:mod:`strata.server.redislock`) and the
rate limit buckets (:mod:`strata.server.ratelimit`). redis-py has one socket timeout: the larger of
``readtimeout`` and ``writetimeout``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from strata.server.config import ConfigError, RegistryConfig, parse_duration

__all__ = ["RedisSettings", "blobdescriptor_cache_enabled", "connect", "parse_redis", "redis_for"]

_KEYS = {"addr", "password", "db", "dialtimeout", "readtimeout", "writetimeout", "pool", "tls", "username"}
_POOL_KEYS = {"maxidle", "maxactive", "idletimeout"}


@dataclass(frozen=True)
class RedisSettings:
    host: str
    port: int
    password: str | None = None
    username: str | None = None
    db: int = 0
    dialtimeout: float = 5.0
    readtimeout: float = 5.0
    writetimeout: float = 5.0
    maxactive: int = 64
    tls: bool = False


def _addr(value: Any) -> tuple[str, int]:
    host, sep, port = str(value or "").strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"invalid redis.addr: {value!r} (host:port)")
    return host.strip("[]"), int(port)


def _int(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"invalid redis.{key}: {value!r}")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid redis.{key}: {value!r}")
    if n < low:
        raise ConfigError(f"invalid redis.{key}: {n}")
    return n


def _duration(key: str, value: Any, default: float) -> float:
    if value is None or value == "":
        return default
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ConfigError(f"invalid redis.{key}: {value!r}")
    return seconds


def _unknown(section: Mapping[str, Any], known: set[str], prefix: str) -> None:
    extra = sorted(str(k) for k in section if k not in known)
    if extra:
        raise ConfigError(f"unknown configuration key {prefix}{extra[0]!r} in the redis section")


def parse_redis(raw: Any) -> RedisSettings | None:
    """The section from the raw config mapping; None when absent."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError("redis must be a mapping (addr, password, db, ...)")
    _unknown(raw, _KEYS, "")
    pool = raw.get("pool") or {}
    if not isinstance(pool, Mapping):
        raise ConfigError("redis.pool must be a mapping (maxidle, maxactive, idletimeout)")
    _unknown(pool, _POOL_KEYS, "pool.")
    tls = raw.get("tls") or {}
    host, port = _addr(raw.get("addr"))
    return RedisSettings(
        host=host, port=port,
        password=str(raw["password"]) if raw.get("password") not in (None, "") else None,
        username=str(raw["username"]) if raw.get("username") not in (None, "") else None,
        db=_int("db", raw.get("db", 0), 0),
        dialtimeout=_duration("dialtimeout", raw.get("dialtimeout"), 5.0),
        readtimeout=_duration("readtimeout", raw.get("readtimeout"), 5.0),
        writetimeout=_duration("writetimeout", raw.get("writetimeout"), 5.0),
        maxactive=_int("pool.maxactive", pool.get("maxactive", 64) or 64, 1),
        tls=isinstance(tls, Mapping) and bool(tls.get("enabled")),
    )  # fmt: skip


def connect(settings: RedisSettings) -> redis.Redis:
    """A client over a blocking pool of at most ``pool.maxactive`` connections (made lazily)."""
    pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
        host=settings.host, port=settings.port, db=settings.db, password=settings.password,
        username=settings.username, socket_connect_timeout=settings.dialtimeout,
        socket_timeout=max(settings.readtimeout, settings.writetimeout), max_connections=settings.maxactive,
        timeout=max(settings.readtimeout, settings.writetimeout),
        **({"connection_class": redis.SSLConnection} if settings.tls else {}),
    )  # fmt: skip
    return redis.Redis(connection_pool=pool)


def redis_for(config: RegistryConfig) -> redis.Redis | None:
    """The client for a configuration's ``redis`` section, or None without one."""
    raw = config.raw if isinstance(config.raw, dict) else {}
    settings = parse_redis(raw.get("redis"))
    return connect(settings) if settings is not None else None


def blobdescriptor_cache_enabled(config: RegistryConfig) -> bool:
    """``storage.cache.blobdescriptor: redis``; refused without a ``redis`` section."""
    raw = config.raw if isinstance(config.raw, dict) else {}
    storage = raw.get("storage")
    cache = storage.get("cache") if isinstance(storage, dict) else None
    kind = cache.get("blobdescriptor") if isinstance(cache, dict) else None
    if kind != "redis":
        return False
    if raw.get("redis") is None:
        raise ConfigError("storage.cache.blobdescriptor: redis needs a redis section")
    return True
