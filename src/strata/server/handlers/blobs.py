"""``GET``/``HEAD``/``DELETE /v2/<name>/blobs/<digest>``: sendfile for local blobs, Range supported."""

from __future__ import annotations

import re

from aiohttp import web

from strata.digest import CHUNK, Digest
from strata.distribution import errcodes as ec
from strata.server.handlers.base import APIError, RequestContext, parse_digest
from strata.server.proxy import proxy_of
from strata.server.storage import paths
from strata.server.storage.driver import FileInfo

__all__ = ["delete_blob", "get_blob"]

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
SMALL_BLOB = 256 << 10  # served whole from one read (and the content cache) rather than streamed


def _blob_headers(digest: str) -> dict[str, str]:
    return {
        "Docker-Content-Digest": digest,
        "Content-Type": "application/octet-stream",
        "Cache-Control": "max-age=31536000",
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
    }


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    m = _RANGE_RE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:
        start = max(0, size - int(m.group(2)))
        end = size - 1
    return start, min(end, size - 1)


def _keep_alive(ctx: RequestContext, d: Digest) -> FileInfo:
    info = ctx.repository.blobs.stat(d)
    if info is None:
        raise APIError(ec.BLOB_UNKNOWN, detail={"digest": str(d)})
    ctx.state.registry.blobs.keep_alive(d, info)
    return info


async def _stat(request: web.Request, ctx: RequestContext, d: Digest) -> FileInfo | web.StreamResponse:
    """The blob's info, or a pull-through cache's answer for a blob that is not here."""
    repo, run = ctx.repository, ctx.state.storage.run
    info = await run(repo.blobs.stat, d)
    proxy = proxy_of(request)
    if proxy is not None and info is None:  # a pull-through cache asks its upstream
        answer = await proxy.blob(request, repo, d, ctx.actor)
        if answer is not None:
            return answer
        info = await run(repo.blobs.stat, d)
    elif proxy is not None:
        proxy.local_hit(repo.name, "blob", request.method)
    if info is None:
        raise APIError(ec.BLOB_UNKNOWN, detail={"digest": str(d)})
    return info


async def get_blob(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    d = parse_digest(ctx.params["digest"])
    info = await _stat(request, ctx, d)
    if isinstance(info, web.StreamResponse):
        return info
    blobs = ctx.state.registry.blobs
    headers = _blob_headers(str(d))
    if request.method == "HEAD":
        if blobs.is_stale(info):
            # a HEAD is how clients decide to skip an upload: keep the blob out of a sweep
            async with ctx.state.gc_lock.shared():
                info = await ctx.state.storage.run(_keep_alive, ctx, d)
        headers["Content-Length"] = str(info.size)
        return web.Response(status=200, headers=headers)
    ctx.state.notifier.blob_event("pull", ctx.repository.name, d, info.size, request, ctx.actor)
    url = await ctx.state.storage.run(blobs.driver.redirect_url, paths.blob_data(d))  # signing: CPU, off the loop
    if url is not None:  # storage.redirect: the client fetches the bytes from the backend itself
        return web.Response(status=307, headers={"Location": url, "Content-Length": "0"})
    local = blobs.local_path(d)
    if local is not None:
        del headers["Content-Type"]
        resp = web.FileResponse(local, chunk_size=CHUNK, headers=headers)
        resp.content_type = "application/octet-stream"
        return resp
    if info.size <= SMALL_BLOB:
        return await _small_blob(request, ctx, d, info.size, headers)
    return await _stream_blob(request, ctx, d, info.size, headers)


async def _small_blob(
    request: web.Request, ctx: RequestContext, d: Digest, size: int, headers: dict[str, str]
) -> web.StreamResponse:
    """A small blob (image configs) on remote storage: its bytes never change, so once read they are
    kept in this process and the stat just made vouches for them (one round trip instead of two)."""
    data = await ctx.state.storage.run(ctx.state.registry.blobs.get, d, True)
    if data is None or len(data) != size:
        raise APIError(ec.BLOB_UNKNOWN, detail={"digest": str(d)})
    start, length, status = _range(request, size, headers)
    return web.Response(status=status, body=data[start : start + length], headers=headers)


def _range(request: web.Request, size: int, headers: dict[str, str]) -> tuple[int, int, int]:
    """(start, length, status) of what to send; sets Content-Range/Content-Length."""
    start, end, status = 0, size - 1, 200
    rng = request.headers.get("Range")
    if rng and size > 0:
        parsed = _parse_range(rng, size)
        if parsed is None or parsed[0] >= size or parsed[0] > parsed[1]:
            raise APIError(ec.RANGE_INVALID, headers={"Content-Range": f"bytes */{size}"})
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    return start, length, status


async def _stream_blob(
    request: web.Request, ctx: RequestContext, d: Digest, size: int, headers: dict[str, str]
) -> web.StreamResponse:
    start, length, status = _range(request, size, headers)
    run = ctx.state.storage.run
    reader = await run(ctx.state.registry.blobs.reader, d, start)
    try:
        resp = web.StreamResponse(status=status, headers=headers)
        await resp.prepare(request)
        remaining = length
        while remaining > 0:
            chunk = await run(reader.read, min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            await resp.write(chunk)
    finally:
        await run(reader.close)
    await resp.write_eof()
    return resp


async def delete_blob(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    if not ctx.state.config.delete_enabled:
        raise APIError(ec.UNSUPPORTED)  # distribution: "The operation is unsupported."
    d = parse_digest(ctx.params["digest"])
    repo = ctx.repository
    if not await ctx.state.storage.run(repo.blobs.unlink, d):
        raise APIError(ec.BLOB_UNKNOWN, detail={"digest": str(d)})
    ctx.state.notifier.blob_event("delete", repo.name, d, 0, request, ctx.actor)
    return web.Response(status=202, headers={"Content-Length": "0"})
