"""Garbage collection: mark everything reachable, sweep unreferenced blobs, safe during pushes.

Safety while the registry serves pushes comes from three rules:

* a blob is deleted only if it is unmarked *and* its data file is older than the grace period
  (uploads commit with a fresh time, and the server refreshes the time of old blobs a client
  asks about or a manifest references), so blobs pushed for a manifest still in flight survive;
* the sweep runs under the exclusive GC lock, while blob commits and manifest puts hold it shared,
  and just before sweeping the manifests written since marking began are marked too;
* untagged manifests are deleted (``delete_untagged``) only when older than the grace period, and
  children and referrers of kept manifests are always kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from strata.digest import Digest
from strata.errors import InvalidDigest
from strata.image import mediatypes as mt
from strata.server.redislock import RedisGCLease
from strata.server.storage import paths
from strata.server.storage.driver import PathNotFound, StorageDriver
from strata.server.storage.registry import Registry, Repository
from strata.server.storelock import StoreGCLease

__all__ = [
    "LAST_RUN_PATH", "GCLock", "GCReport", "LastRun", "collect", "last_run", "run_schedule", "run_upload_purger",
]

log = logging.getLogger("strata.registry.gc")

# the last pass's summary, beside the registry's content (the UI shows it); written whole (put_content
# is an atomic rename on a filesystem, one PUT on S3), so a reader never sees half of it
LAST_RUN_PATH = f"{paths.ROOT}/strata/gc/last.json"


class GCLock:
    """Shared for writers of blobs/manifests, exclusive for the sweep; works across processes (a file
    lock on a filesystem) and, with ``remote`` (leases in Redis, or objects in shared storage such as
    S3: ``strata.server.storelock``), across replicas on other hosts."""

    def __init__(self, driver: StorageDriver, remote: RedisGCLease | StoreGCLease | None = None) -> None:
        self.remote = remote
        local = driver.local_path(f"{paths.ROOT}/gc.lock")
        self._file = local
        if local is not None:
            os.makedirs(os.path.dirname(local), exist_ok=True)
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def _acquire_shared_local(self, blocking: bool) -> bool:
        with self._cond:
            if self._writer and not blocking:
                return False
            while self._writer:
                self._cond.wait()
            self._readers += 1
            return True

    def _release_shared_local(self) -> None:
        with self._cond:
            self._readers -= 1
            self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        if not self._acquire_shared_local(False):
            await asyncio.to_thread(self._acquire_shared_local, True)
        fd = None
        try:
            if self._file is not None:
                fd = os.open(self._file, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_SH)
            async with self._remote_shared():
                yield
        finally:
            if fd is not None:
                os.close(fd)
            self._release_shared_local()

    def _remote_shared(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.remote.shared() if self.remote is not None else contextlib.nullcontext()

    def held(self) -> None:
        """Raise if the exclusive hold was lost (a remote lease that ran out); call before deleting."""
        if self.remote is not None:
            self.remote.held()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        fd = None
        try:
            if self._file is not None:
                fd = os.open(self._file, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
            with self.remote.exclusive() if self.remote is not None else contextlib.nullcontext():
                yield
        finally:
            if fd is not None:
                os.close(fd)
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class GCReport:
    marked: set[Digest] = field(default_factory=set)
    deleted_blobs: list[Digest] = field(default_factory=list)
    deleted_manifests: list[tuple[str, Digest]] = field(default_factory=list)
    deleted_uploads: list[tuple[str, str]] = field(default_factory=list)
    freed_bytes: int = 0
    dry_run: bool = False
    started: float = 0.0
    duration: float = 0.0


@dataclass(frozen=True)
class LastRun:
    """What ``LAST_RUN_PATH`` holds: when the last pass started, how long it took, what it deleted."""

    started: float
    duration: float
    deleted_blobs: int
    deleted_manifests: int
    deleted_uploads: int
    freed_bytes: int
    dry_run: bool

    def to_json(self) -> bytes:
        return json.dumps({
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)), "started": self.started,
            "duration": round(self.duration, 3), "deletedBlobs": self.deleted_blobs,
            "deletedManifests": self.deleted_manifests, "deletedUploads": self.deleted_uploads,
            "freedBytes": self.freed_bytes, "dryRun": self.dry_run,
        }, indent=2).encode() + b"\n"


def _count(doc: dict[str, object], key: str) -> int:
    value = doc.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _number(doc: dict[str, object], key: str) -> float:
    value = doc.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else 0.0


def last_run(driver: StorageDriver) -> LastRun | None:
    """The last pass's summary, None when no pass ran (or its record is unreadable)."""
    try:
        doc = json.loads(driver.get_content(LAST_RUN_PATH))
    except (PathNotFound, ValueError):
        return None
    if not isinstance(doc, dict) or _number(doc, "started") <= 0:
        return None
    return LastRun(_number(doc, "started"), _number(doc, "duration"), _count(doc, "deletedBlobs"),
                   _count(doc, "deletedManifests"), _count(doc, "deletedUploads"), _count(doc, "freedBytes"),
                   doc.get("dryRun") is True)


def _record(driver: StorageDriver, report: GCReport) -> None:
    """Write the pass's summary; a failure to write it is logged, never undoes or fails the pass."""
    summary = LastRun(report.started, report.duration, len(report.deleted_blobs), len(report.deleted_manifests),
                      len(report.deleted_uploads), report.freed_bytes, report.dry_run)
    try:
        driver.put_content(LAST_RUN_PATH, summary.to_json())
    except Exception as e:  # the storage's own error, whatever the driver
        log.warning("gc: could not record the pass in %s: %s", LAST_RUN_PATH, e)


def _references(data: bytes) -> tuple[list[Digest], list[Digest]]:
    """(blobs, child manifests) a manifest refers to; empty for unreadable content."""
    try:
        doc = json.loads(data)
    except ValueError:
        return [], []
    if not isinstance(doc, dict):
        return [], []
    blobs: list[Digest] = []
    children: list[Digest] = []
    descs = [doc.get("config"), *(doc.get("layers") or [])]
    for desc in descs:
        if isinstance(desc, dict):
            with contextlib.suppress(InvalidDigest, TypeError):
                blobs.append(Digest.parse(str(desc.get("digest"))))
    media = doc.get("mediaType")
    if media in mt.INDEX_TYPES or "manifests" in doc:
        for desc in doc.get("manifests") or []:
            if isinstance(desc, dict):
                with contextlib.suppress(InvalidDigest, TypeError):
                    children.append(Digest.parse(str(desc.get("digest"))))
    return blobs, children


def _subject(data: bytes) -> Digest | None:
    try:
        doc = json.loads(data)
        return Digest.parse(str(doc["subject"]["digest"]))
    except (ValueError, KeyError, TypeError, InvalidDigest):
        return None


def _mark(repo: Repository, d: Digest, marked: set[Digest], kept: set[Digest]) -> None:
    stack = [d]
    while stack:
        cur = stack.pop()
        if cur in kept:
            continue
        kept.add(cur)
        marked.add(cur)
        data = repo.manifests.get(cur)
        if data is None:
            continue
        blobs, children = _references(data)
        marked.update(blobs)
        stack.extend(children)
        stack.extend(repo.manifests.referrers(cur))


def _mark_repository(
    repo: Repository, marked: set[Digest], delete_untagged: bool, cutoff: float
) -> list[Digest]:
    """Mark what ``repo`` keeps; returns its manifests to delete."""
    revisions = repo.manifests.all()
    if delete_untagged:
        roots = set(repo.tags.mapping().values())
        roots.update(d for d in revisions if repo.manifests.revision_mtime(d) >= cutoff)
    else:
        roots = set(revisions)
    kept: set[Digest] = set()
    for d in sorted(roots):
        _mark(repo, d, marked, kept)
    return [d for d in revisions if d not in kept]


def collect(
    registry: Registry,
    lock: GCLock,
    *,
    dry_run: bool = False,
    delete_untagged: bool = False,
    grace_period: float = 3600.0,
    upload_purge_age: float = 7 * 86400.0,
) -> GCReport:
    """One mark-and-sweep pass; see the module docstring for why it is safe during pushes."""
    report = GCReport(dry_run=dry_run)
    start = report.started = time.time()
    cutoff = start - grace_period
    doomed: dict[str, list[Digest]] = {}
    for name in registry.repositories():
        doomed[name] = _mark_repository(registry.repository(name), report.marked, delete_untagged, cutoff)
    with lock.exclusive():
        for name in registry.repositories():
            repo = registry.repository(name)
            kept: set[Digest] = set()
            for d in repo.manifests.all():
                if repo.manifests.revision_mtime(d) >= start - 0.02:
                    _mark(repo, d, report.marked, kept)
            for d in doomed.get(name, []):
                if d in kept:
                    continue
                if repo.manifests.revision_mtime(d) >= cutoff or repo.tags.lookup(d):
                    continue
                report.deleted_manifests.append((name, d))
                if not dry_run:
                    lock.held()
                    subject = _subject(repo.manifests.get(d) or b"")
                    if subject is not None:
                        repo.manifests.remove_referrer(subject, d)
                    repo.manifests.delete(d)
        if not dry_run and report.deleted_manifests:
            # manifests deleted now may have been the only reason some blobs were marked
            report.marked = set()
            for name in registry.repositories():
                _mark_repository(registry.repository(name), report.marked, False, cutoff)
        for d, info in list(registry.blobs.all()):
            if d in report.marked or info.mtime >= cutoff:
                continue
            report.deleted_blobs.append(d)
            report.freed_bytes += info.size
            if not dry_run:
                lock.held()
                registry.blobs.delete(d)
        if not dry_run:
            _drop_dangling_links(registry)
    _purge_uploads(registry, report, start - upload_purge_age, dry_run)
    report.duration = time.time() - start
    _record(registry.driver, report)
    return report


def _drop_dangling_links(registry: Registry) -> None:
    for name in registry.repositories():
        repo = registry.repository(name)
        for d in repo.blobs.all():
            if registry.blobs.stat(d) is None:
                repo.blobs.unlink(d)


def _purge_uploads(registry: Registry, report: GCReport, before: float, dry_run: bool) -> None:
    for name in registry.repositories_with_uploads():
        repo = registry.repository(name)
        for uid in repo.uploads.all():
            started = repo.uploads.started_at(uid)
            if started is not None and started < before:
                report.deleted_uploads.append((name, uid))
                if not dry_run:
                    with contextlib.suppress(PathNotFound):
                        repo.uploads.remove(uid)


async def run_schedule(
    registry: Registry, lock: GCLock, interval: float, *, delete_untagged: bool, grace_period: float,
    upload_purge_age: float,
) -> None:
    """Online GC: one pass every ``interval`` seconds, in a worker thread."""
    while True:
        await asyncio.sleep(interval)
        try:
            report = await asyncio.to_thread(
                collect, registry, lock, delete_untagged=delete_untagged, grace_period=grace_period,
                upload_purge_age=upload_purge_age,
            )
            log.info(
                "gc: deleted %d blobs (%d bytes), %d manifests, %d uploads",
                len(report.deleted_blobs), report.freed_bytes, len(report.deleted_manifests),
                len(report.deleted_uploads),
            )
        except Exception:
            log.exception("gc pass failed")


async def run_upload_purger(registry: Registry, age: float, interval: float, dry_run: bool) -> None:
    """distribution's ``storage.maintenance.uploadpurging``: every ``interval`` (the first pass after
    a random delay of up to an hour, never more than the interval), delete uploads older than ``age``."""
    await asyncio.sleep(random.uniform(0, min(interval, 3600.0)))
    while True:
        try:
            report = GCReport(dry_run=dry_run)
            await asyncio.to_thread(_purge_uploads, registry, report, time.time() - age, dry_run)
            if report.deleted_uploads:
                log.info("upload purge: %s %d uploads older than %ds", "would delete" if dry_run else "deleted",
                         len(report.deleted_uploads), int(age))
        except Exception:
            log.exception("upload purge failed")
        await asyncio.sleep(interval)
