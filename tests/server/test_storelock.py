"""The GC lock's leases as objects in the storage (no Redis): two lease objects over one directory
stand for two replicas over one bucket; the S3 run is in s3/test_gc_replicas_s3.py."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from strata.server.redislock import LeaseLost
from strata.server.storage.filesystem import FilesystemDriver
from strata.server.storelock import LOCK_ROOT, StoreGCLease


def _pair(tmp_path: Path, lease: float = 30.0) -> tuple[FilesystemDriver, StoreGCLease, StoreGCLease]:
    driver = FilesystemDriver(str(tmp_path / "root"))
    return driver, StoreGCLease(driver, lease=lease, poll=0.02), StoreGCLease(driver, lease=lease, poll=0.02)


def _holds(driver: FilesystemDriver, kind: str) -> list[str]:
    try:
        return driver.list(f"{LOCK_ROOT}/{kind}")
    except Exception:
        return []


def test_a_writer_waits_while_another_replica_sweeps(tmp_path: Path) -> None:
    driver, writer, gc = _pair(tmp_path)
    order: list[str] = []
    swept = threading.Event()

    def sweep() -> None:
        with gc.exclusive():
            order.append("sweep")
            swept.set()
            time.sleep(0.3)
            gc.held()
            order.append("sweep done")

    t = threading.Thread(target=sweep)
    t.start()
    assert swept.wait(60)  # the sweep holds the lock (late on a loaded machine) before the writer asks

    async def write() -> None:
        async with writer.shared():
            order.append("write")

    asyncio.run(write())
    t.join()
    assert order == ["sweep", "sweep done", "write"]
    assert _holds(driver, "writers") == [] and _holds(driver, "sweeps") == []


def test_a_sweep_waits_for_the_writers_of_another_replica(tmp_path: Path) -> None:
    _, writer, gc = _pair(tmp_path)
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    async def write() -> None:
        async with writer.shared():
            order.append("write")
            holding.set()
            await asyncio.to_thread(release.wait, 60)
            order.append("write done")

    t = threading.Thread(target=asyncio.run, args=(write(),))
    t.start()
    assert holding.wait(60)  # the writer holds its share before the sweep asks
    threading.Timer(0.3, release.set).start()
    with gc.exclusive():
        order.append("sweep")
    t.join()
    assert order == ["write", "write done", "sweep"]


def test_a_dead_writers_marker_stops_blocking_when_its_lease_ends(tmp_path: Path) -> None:
    driver, _, gc = _pair(tmp_path, lease=0.5)
    dead = StoreGCLease(driver, lease=0.5)
    started = time.monotonic()  # before the marker: its 0.5 s runs from a moment after this, however late
    assert dead.try_shared("killed") is not None  # kill -9: never released
    with gc.exclusive():
        waited = time.monotonic() - started
    assert 0.4 < waited < 10  # the lease ran out (not forever), with room for a loaded machine
    assert _holds(driver, "writers") == []  # the expired marker was removed


def test_a_sweep_whose_lease_lapsed_must_stop(tmp_path: Path) -> None:
    _, _, gc = _pair(tmp_path, lease=30.0)
    with gc.exclusive():
        gc.held()
        gc._until = time.time() + 1  # renewals failed for most of the lease
        with pytest.raises(LeaseLost):
            gc.held()
