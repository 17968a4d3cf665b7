"""One download of a blob from an upstream, streamed to every client that asks for it meanwhile.

The bytes go to a private upload file of the repository (``_uploads/<uuid>/data``, which the upload
purger removes if the process dies), hashed as they arrive by the client's ``BlobReader``. Only when
the whole blob has arrived *and* its digest checks is it moved into the blob store and linked: nothing
partial is ever stored or visible. Clients are sent what has arrived, except the last byte, which goes
out only after the digest checked -- so a client of a lying or stalled upstream never receives a whole
(wrong) body: its connection is closed short and it retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import BinaryIO

from aiohttp import web

from strata.digest import CHUNK, Digest
from strata.distribution.client import BlobReader
from strata.server.storage.driver import FileWriter, StorageDriver, StorageError
from strata.server.storage.registry import Registry

__all__ = ["BlobFetch", "download", "stream_fetch"]

log = logging.getLogger("strata.registry.proxy")


class BlobFetch:
    """The shared state of one download: how much has arrived, and how it ended."""

    def __init__(self, digest: Digest, size: int | None, path: str) -> None:
        self.digest = digest
        self.size = size
        self.path = path  # the driver path being written (moved into the blob store on success)
        self.written = 0
        self.done = False
        self.error: BaseException | None = None
        self._changed = asyncio.Event()

    def progress(self, written: int) -> None:
        self.written = written
        self._wake()

    def finish(self, error: BaseException | None) -> None:
        self.done = True
        self.error = error
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def changed(self) -> None:
        await self._changed.wait()

    async def wait(self) -> None:
        while not self.done:
            await self.changed()


def download(reader: BlobReader, writer: FileWriter, notify: Callable[[int], None]) -> None:
    """Copy the verifying reader into ``writer`` (in a worker thread); raises on a bad or short blob."""
    with reader:
        while chunk := reader.read(CHUNK):
            writer.write(chunk)
            notify(writer.size)
    writer.commit()


def _open(driver: StorageDriver, registry: Registry, fetch: BlobFetch, offset: int) -> BinaryIO | None:
    """A reader at ``offset`` of the arriving file, else of the stored blob once it moved there."""
    for path_of in (lambda: fetch.path, lambda: None):
        try:
            path = path_of()
            return driver.reader(path, offset) if path is not None else registry.blobs.reader(fetch.digest, offset)
        except StorageError:  # not there (yet, or any more), or shorter than asked
            continue
    return None


def _abort(request: web.Request) -> None:
    """Close the connection short of the declared length: the client sees an incomplete body."""
    if request.transport is not None:
        request.transport.close()


async def stream_fetch(
    request: web.Request, registry: Registry, fetch: BlobFetch, headers: dict[str, str]
) -> web.StreamResponse:
    """Send the blob as it arrives; the last byte only once the download is verified and stored."""
    if fetch.size is not None:
        headers["Content-Length"] = str(fetch.size)
    resp = web.StreamResponse(status=200, headers=headers)
    await resp.prepare(request)
    sent = 0
    src: BinaryIO | None = None
    try:
        while True:
            if fetch.error is not None:
                _abort(request)
                return resp
            limit = fetch.written if fetch.done else fetch.written - 1
            if sent < limit:
                fresh = src is None
                src = src or _open(registry.driver, registry, fetch, sent)
                if src is None and fetch.done:  # stored, yet gone (a sweep): cut short, the client retries
                    _abort(request)
                    return resp
                if src is None:  # a driver that shows a file only once written: wait for the end
                    await fetch.changed()
                    continue
                chunk = src.read(min(CHUNK, limit - sent))
                if chunk:
                    await resp.write(chunk)
                    sent += len(chunk)
                    continue
                src.close()
                src = None
                if not fresh:
                    continue  # a snapshot reader (in-memory driver) ran dry: open a new one
            elif fetch.done:
                break
            await fetch.changed()
    except ConnectionError:
        return resp
    finally:
        if src is not None:
            src.close()
    await resp.write_eof()
    return resp
