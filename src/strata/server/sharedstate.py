"""What replicas and workers share, built from the configuration: the registry (with the blob
descriptor cache in Redis when ``storage.cache.blobdescriptor: redis``), the GC lock and one writer
per upload (Redis leases when a ``redis`` section is present; without one, the GC lock's leases are
objects in the shared storage) and the rate limiter (buckets in Redis
likewise).

Keys in Redis are prefixed by a namespace derived from the storage location (bucket, endpoint and
root directory, or the filesystem root), so registries over different storage may share one Redis.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import redis

from strata.server.config import RegistryConfig
from strata.server.gc import GCLock
from strata.server.ratelimit import RateLimiter, RedisRateLimiter
from strata.server.rediscache import RedisDescriptorCache
from strata.server.redisconf import blobdescriptor_cache_enabled, redis_for
from strata.server.redislock import RedisGCLease, RedisUploadLock
from strata.server.storage.driver import StorageDriver
from strata.server.storage.registry import Registry
from strata.server.storelock import StoreGCLease

__all__ = ["Shared", "build_shared", "namespace"]

log = logging.getLogger("strata.registry")


@dataclass
class Shared:
    registry: Registry
    gc_lock: GCLock
    limiter: RateLimiter | None
    redis: redis.Redis | None


def namespace(config: RegistryConfig) -> str:
    """``strata:<12 hex>``: the same for every replica of one registry's storage."""
    storage = config.raw.get("storage") if isinstance(config.raw, dict) else None
    where: object = config.root
    if isinstance(storage, dict) and isinstance(storage.get("s3"), dict):
        s3 = storage["s3"]
        where = [s3.get("regionendpoint"), s3.get("region"), s3.get("bucket"), s3.get("rootdirectory")]
    digest = hashlib.sha256(json.dumps(where, default=str).encode()).hexdigest()[:12]
    return f"strata:{digest}"


def build_shared(config: RegistryConfig, driver: StorageDriver) -> Shared:
    cache_on = blobdescriptor_cache_enabled(config)  # refused without a redis section
    client = redis_for(config)
    ns = namespace(config)
    cache = RedisDescriptorCache(client, ns) if client is not None and cache_on else None
    uploads = RedisUploadLock(client, ns) if client is not None else None
    registry = Registry(driver, touch_after=min(600.0, config.gc.graceperiod / 4), cache=cache, upload_lock=uploads)
    remote: RedisGCLease | StoreGCLease | None = None
    if client is not None:
        remote = RedisGCLease(client, ns)
    elif driver.name not in ("filesystem", "inmemory"):
        remote = StoreGCLease(driver)  # replicas on other hosts: the handshake goes through the bucket
    lock = GCLock(driver, remote)
    rl = config.ratelimit
    limiter: RateLimiter | None = None
    if rl.enabled and client is not None:
        limiter = RedisRateLimiter(client, ns, rl.rate, rl.burst)
    elif rl.enabled:
        limiter = RateLimiter(rl.rate, rl.burst, max_clients=rl.maxclients)
    return Shared(registry, lock, limiter, client)
