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

from strata import mediatypes as mt
from strata.digest import Digest
from strata.errors import InvalidDigest
from strata.server.storage import paths
from strata.server.storage.driver import PathNotFound, StorageDriver
from strata.server.storage.registry import Registry, Repository

__all__ = ["GCLock", "GCReport", "collect", "run_schedule", "run_upload_purger"]

log = logging.getLogger("strata.registry.gc")


class GCLock:
    """Shared for writers of blobs/manifests, exclusive for the sweep; works across processes."""

    def __init__(self, driver: StorageDriver) -> None:
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
            yield
        finally:
            if fd is not None:
                os.close(fd)
            self._release_shared_local()

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
    start = time.time()
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
                registry.blobs.delete(d)
        if not dry_run:
            _drop_dangling_links(registry)
    _purge_uploads(registry, report, start - upload_purge_age, dry_run)
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
