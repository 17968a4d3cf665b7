"""The GC lock across replicas without Redis: leases kept as objects in the registry's own storage.

Blob commits and manifest puts hold the lock shared, a sweep holds it exclusive; replicas on other
hosts share nothing but the object store, so the handshake goes through it:

* a writer PUTs a marker ``writers/<ends>-<token>`` and then LISTs ``sweeps/``; if a live sweep is
  there it removes its marker and waits (a GC is never starved by a stream of pushes);
* a GC PUTs ``sweeps/<ends>-<token>`` and then LISTs ``writers/`` until no live marker is left
  (markers whose lease ended -- a writer killed with -9 -- are removed and ignored).

Both sides write before they read, and the object store lists what was written before (S3 and
radosgw list strongly consistently), so a writer and a sweep never both miss each other: either the
writer sees the sweep and backs off, or the sweep sees the writer and waits for it. ``<ends>`` is
when the lease runs out (epoch milliseconds, the replicas' clocks, as the grace period assumes);
holders renew by writing a new object before removing the old one, so one is always there. A sweep
that could not renew in time stops before its lease ends: :meth:`StoreGCLease.held`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator

from strata.server.redislock import LeaseLost
from strata.server.storage import paths
from strata.server.storage.driver import PathNotFound, StorageDriver

__all__ = ["LOCK_ROOT", "StoreGCLease"]

LOCK_ROOT = f"{paths.ROOT}/strata/gc/lock"
_WRITERS = f"{LOCK_ROOT}/writers"
_SWEEPS = f"{LOCK_ROOT}/sweeps"


def _leases(driver: StorageDriver, folder: str) -> list[tuple[float, str]]:
    """(end of lease, path) of every hold in ``folder``; names that are not ours are skipped."""
    try:
        names = driver.list(folder)
    except PathNotFound:
        return []
    found = []
    for path in names:
        ends, _, token = path.rsplit("/", 1)[-1].partition("-")
        if ends.isdigit() and token:
            found.append((int(ends) / 1000.0, path))
    return found


class StoreGCLease:
    """See the module docstring. ``lease`` is in seconds; waits poll every ``poll`` seconds."""

    def __init__(self, driver: StorageDriver, lease: float = 30.0, poll: float = 0.1) -> None:
        self.driver = driver
        self.lease = lease
        self.poll = poll
        self._until = 0.0  # when the sweep's current lease object ends (this process's sweep)

    def _put(self, folder: str, token: str) -> tuple[str, float]:
        ends = time.time() + self.lease
        path = f"{folder}/{int(ends * 1000)}-{token}"
        self.driver.put_content(path, b"")
        return path, ends

    def _remove(self, path: str) -> None:
        with contextlib.suppress(PathNotFound):
            self.driver.delete(path)

    def _renew(self, folder: str, token: str, old: str) -> tuple[str, float]:
        new = self._put(folder, secrets.token_hex(4) + token)
        self._remove(old)
        return new

    def try_shared(self, token: str) -> str | None:
        """The marker's path when no sweep is live (the hold is granted), else None (nothing left)."""
        path, _ = self._put(_WRITERS, token)
        now = time.time()
        if any(ends > now for ends, _ in _leases(self.driver, _SWEEPS)):
            self._remove(path)
            return None
        return path

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        token = secrets.token_hex(12)
        while (path := await asyncio.to_thread(self.try_shared, token)) is None:
            await asyncio.sleep(self.poll)
        current = [path]

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease / 3)
                current[0], _ = await asyncio.to_thread(self._renew, _WRITERS, token, current[0])

        renewing = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a failed renewal: the lease ran on
                await renewing
            await asyncio.to_thread(self._remove, current[0])

    def _live_writers(self) -> bool:
        now = time.time()
        live = False
        for ends, path in _leases(self.driver, _WRITERS):
            if ends > now:
                live = True
            else:
                self._remove(path)  # its holder died: the lease is over
        return live

    def _keep(self, token: str, current: list[str], stop: threading.Event) -> None:
        while not stop.wait(self.lease / 3):
            with contextlib.suppress(Exception):  # the storage's own error: held() notices the lapse
                current[0], self._until = self._renew(_SWEEPS, token, current[0])

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        token = secrets.token_hex(12)
        path, self._until = self._put(_SWEEPS, token)
        current = [path]
        stop = threading.Event()
        keeper = threading.Thread(target=self._keep, args=(token, current, stop), daemon=True)
        keeper.start()
        try:
            while self._live_writers():
                time.sleep(self.poll)
            yield
        finally:
            stop.set()
            keeper.join()
            self._remove(current[0])

    def held(self) -> None:
        """Raise ``LeaseLost`` when the sweep's lease is about to end unrenewed (call before deleting)."""
        if time.time() > self._until - self.lease / 6:
            raise LeaseLost("the GC lock's lease in the storage could not be renewed; stopping the sweep")
