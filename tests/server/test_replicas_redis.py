"""What replicas share through a real redis-server (no object store needed): the GC lock's leases,
the ``redis`` section's parsing, the rate limit buckets and the blob descriptor cache."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable

import pytest

from server.s3.redisd import RedisServer, session_redis
from strata.digest import Digest
from strata.server.config import ConfigError, build_config
from strata.server.gc import GCLock, collect
from strata.server.ratelimit import RedisRateLimiter
from strata.server.rediscache import RedisDescriptorCache
from strata.server.redisconf import parse_redis
from strata.server.redislock import LeaseLost, RedisGCLease
from strata.server.sharedstate import build_shared
from strata.server.storage.inmemory import InMemoryDriver

pytestmark = pytest.mark.peers


@pytest.fixture
def rds() -> RedisServer:
    return session_redis()


def _ns() -> str:
    return f"test:{time.monotonic_ns()}"


def test_redis_section_as_distribution_writes_it() -> None:
    s = parse_redis({"addr": "10.0.0.5:6380", "password": "pw", "db": 3, "dialtimeout": "10ms",
                     "readtimeout": "2s", "writetimeout": "3s", "pool": {"maxidle": 16, "maxactive": 64,
                                                                         "idletimeout": "300s"}})  # fmt: skip
    assert s is not None and (s.host, s.port, s.password, s.db, s.maxactive) == ("10.0.0.5", 6380, "pw", 3, 64)
    assert (s.dialtimeout, s.readtimeout, s.writetimeout) == (0.01, 2.0, 3.0)
    assert parse_redis(None) is None
    for bad, msg in [({"addr": "nohost"}, "invalid redis.addr"), ({"addr": "a:1", "db": -1}, "invalid redis.db"),
                     ({"addr": "a:1", "pool": 3}, "redis.pool must be"), ({"addr": "a:1", "adr": 1}, "'adr'")]:
        with pytest.raises(ConfigError, match=msg):
            parse_redis(bad)
    with pytest.raises(ConfigError, match="needs a redis section"):
        build_shared(build_config({"storage": {"inmemory": {}, "cache": {"blobdescriptor": "redis"}}}),
                     InMemoryDriver())  # fmt: skip


async def _until_async(check: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_exclusive_waits_for_shared_holds_and_blocks_new_ones(rds: RedisServer) -> None:
    """Each step waits for what the one before it did (not a sleep: a loaded machine may delay any step
    by more than a fixed margin)."""
    client = rds.client()
    lease = RedisGCLease(client, _ns(), lease=5)
    events: list[str] = []
    holding = threading.Event()

    def gc_waits() -> bool:  # the GC has claimed the lease: it waits for the holds, no new one starts
        return bool(client.exists(lease.exclusive_key))

    async def writer() -> None:
        async with lease.shared():
            events.append("shared in")
            holding.set()
            await _until_async(gc_waits)
            await asyncio.sleep(0.5)  # a GC that did not wait for this hold would be in by now
            events.append("shared out")

    def gc() -> None:
        assert holding.wait(30)
        with lease.exclusive():
            events.append("gc in")
            time.sleep(0.5)
            events.append("gc out")

    async def late_writer() -> None:
        await _until_async(gc_waits)  # the GC is waiting by now: no new shared hold until it is done
        async with lease.shared():
            events.append("late in")

    async def main() -> None:
        t = threading.Thread(target=gc)
        t.start()
        await asyncio.gather(writer(), late_writer())
        t.join()

    asyncio.run(main())
    assert events == ["shared in", "shared out", "gc in", "gc out", "late in"]


def test_a_dead_holders_lease_runs_out(rds: RedisServer) -> None:
    ns = _ns()
    lease = RedisGCLease(rds.client(), ns, lease=1)
    started = time.monotonic()  # before the hold: its 1 s runs from a moment after this, however late
    assert lease.try_shared("died-holding-it")  # never released: its process was killed
    with lease.exclusive():
        waited = time.monotonic() - started
        other = RedisGCLease(rds.client(), ns, lease=1)
        assert not other.try_shared("a-push")
    assert 0.9 < waited < 10  # the 1 s lease ran out (not forever), with room for a loaded machine
    assert other.try_shared("a-push")


def test_a_gc_that_loses_its_lease_stops_deleting(rds: RedisServer) -> None:
    client = rds.client()
    ns = _ns()
    lease = RedisGCLease(client, ns, lease=0.6)
    with lease.exclusive():
        client.delete(f"{ns}:gc:exclusive")  # as if the GC stalled past its lease and it ran out
        deadline = time.monotonic() + 30  # its keeper finds out at its next renewal (late on a loaded machine)
        with pytest.raises(LeaseLost):
            while True:
                lease.held()
                assert time.monotonic() < deadline, "the lost lease was never noticed"
                time.sleep(0.05)
    driver = InMemoryDriver()
    shared = build_shared(build_config({"storage": {"inmemory": {}}}), driver)
    collect(shared.registry, GCLock(driver, RedisGCLease(client, _ns())), grace_period=0)  # a normal pass works


def test_rate_limit_buckets_are_shared(rds: RedisServer) -> None:
    ns = _ns()
    # a token every 10 s: the wait the fourth take is told is 10 s less the time the four took (at 1/s a
    # 0.1 s stall of a loaded machine broke a 0.9 s lower bound)
    a, b = (RedisRateLimiter(rds.client(), ns, 0.1, 3) for _ in range(2))
    began = time.monotonic()
    assert [a.take("1.2.3.4"), b.take("1.2.3.4"), a.take("1.2.3.4")] == [0.0, 0.0, 0.0]
    wait = b.take("1.2.3.4")
    assert 10.0 - (time.monotonic() - began) - 0.01 <= wait <= 10.0, wait
    assert a.take("5.6.7.8") == 0.0


def test_descriptor_cache_is_not_filled_while_a_gc_sweeps(rds: RedisServer) -> None:
    ns = _ns()
    cache = RedisDescriptorCache(rds.client(), ns)
    d = Digest.parse("sha256:" + "a" * 64)
    cache.put(d, 5, 1.0)
    assert cache.get(d) == (5, 1.0)
    cache.drop(d)
    with RedisGCLease(rds.client(), ns).exclusive():
        cache.put(d, 5, 1.0)  # a stat made just before the sweep's delete must not come back
        assert cache.get(d) is None


def test_two_replicas_share_descriptors_and_see_each_others_deletes(rds: RedisServer) -> None:
    """Two registries over one store and one Redis: a blob one deletes is gone for the other at once,
    even though the other had its descriptor cached and its content in memory."""
    from strata.server.storage.registry import Registry

    driver = InMemoryDriver()
    ns = _ns()
    a = Registry(driver, cache=RedisDescriptorCache(rds.client(), ns))
    b = Registry(driver, cache=RedisDescriptorCache(rds.client(), ns))
    d = a.blobs.put(b'{"schemaVersion": 2}')
    b.repository("r").blobs.link(d)
    assert b.blobs.get(d) == b'{"schemaVersion": 2}' and b.repository("r").blobs.stat(d) is not None
    assert rds.client().exists(f"{ns}:blob:{d}") and rds.client().exists(f"{ns}:link:r:{d}")
    a.blobs.delete(d)
    assert not rds.client().exists(f"{ns}:blob:{d}")
    assert b.blobs.get(d) is None and b.blobs.stat(d) is None
    assert a.repository("r").blobs.unlink(d) and b.repository("r").blobs.stat(d) is None


def test_workers_share_one_rate_limit_bucket_when_redis_is_configured() -> None:
    from strata.server.workers import worker_config

    limited = {"http": {"ratelimit": {"rate": 10, "burst": 20}}, "storage": {"inmemory": {}}}
    alone = worker_config(build_config(limited), 1, 4).ratelimit
    assert (alone.rate, alone.burst) == (2.5, 5)  # each worker enforces its share
    shared = worker_config(build_config({**limited, "redis": {"addr": "127.0.0.1:6379"}}), 1, 4).ratelimit
    assert (shared.rate, shared.burst) == (10, 20)  # one bucket in Redis for all of them


def test_rate_limit_key_behind_a_trusted_proxy() -> None:
    import ipaddress

    from strata.server.ratelimit import client_key

    lb = [ipaddress.ip_network("10.0.0.0/24")]
    assert client_key("203.0.113.9", "1.1.1.1", lb) == "203.0.113.9"  # not a proxy: its header is ignored
    assert client_key("10.0.0.2", "198.51.100.4", lb) == "198.51.100.4"
    assert client_key("10.0.0.2", "6.6.6.6, 198.51.100.4", lb) == "198.51.100.4"  # the forged left part
    assert client_key("10.0.0.2", "198.51.100.4, 10.0.0.3", lb) == "198.51.100.4"  # two proxies
    assert client_key("10.0.0.2", "not-an-ip", lb) == "10.0.0.2"
    assert client_key("10.0.0.2", None, lb) == "10.0.0.2"


def test_redis_down_reads_still_served_pushes_refused() -> None:
    """The cache and the rate limit fall back to the object store and the process; the GC lock does
    not: a push that cannot take its shared hold fails rather than racing a sweep it cannot see."""
    from server.helpers import ServerThread

    raw = {"storage": {"inmemory": {}, "cache": {"blobdescriptor": "redis"}},
           "redis": {"addr": "127.0.0.1:1", "dialtimeout": "200ms"},
           "http": {"ratelimit": {"rate": 100, "burst": 100}}}  # fmt: skip
    with ServerThread(raw) as reg:
        assert reg.get("/v2/").status == 200
        assert reg.request("HEAD", f"/v2/down/x/blobs/sha256:{'1' * 64}").status == 404
        r = reg.request("POST", "/v2/down/x/blobs/uploads/?digest=" + "sha256:" + hashlib.sha256(b"x").hexdigest(),
                        body=b"x", headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert r.status == 500 and r.codes == ["UNKNOWN"]
        assert reg.request("HEAD", "/v2/down/x/blobs/sha256:" + hashlib.sha256(b"x").hexdigest()).status == 404
