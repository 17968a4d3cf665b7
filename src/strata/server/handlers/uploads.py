"""Blob uploads: ``POST`` (start, monolithic, mount), ``PATCH`` (chunked/streamed), ``PUT`` (commit),
``GET`` (status) and ``DELETE`` (cancel). Bodies stream to private storage while being hashed; a blob
becomes visible only after its digest is verified and it is moved into place atomically."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from strata.digest import Digest
from strata.distribution import errcodes as ec
from strata.server.handlers.base import STATE, APIError, RequestContext, parse_digest
from strata.server.names import is_valid_name
from strata.server.storage.driver import FileWriter
from strata.server.storage.registry import Repository
from strata.server.storage.uploads import is_upload_id

__all__ = ["cancel_upload", "finish_upload", "patch_upload", "start_upload", "upload_status"]

_CONTENT_RANGE_RE = re.compile(r"^(?:bytes )?(\d+)-(\d+)(?:/\d+|/\*)?$")


def _range_value(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


def _upload_headers(repo: Repository, uid: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{repo.name}/blobs/uploads/{uid}",
        "Range": _range_value(size),
        "Docker-Upload-UUID": uid,
        "Content-Length": "0",
    }


def _blob_created(repo: Repository, d: Digest) -> web.Response:
    return web.Response(
        status=201,
        headers={
            "Location": f"/v2/{repo.name}/blobs/{d}",
            "Docker-Content-Digest": str(d),
            "Content-Length": "0",
        },
    )


_BATCH = 1 << 20  # a remote driver gets the body in writes of this size, each from a storage thread


async def _receive(request: web.Request, ctx: RequestContext, repo: Repository, uid: str, start: int) -> int:
    """Append the request body to the upload; on any failure roll back to ``start``."""
    uploads, storage = repo.uploads, ctx.state.storage
    st, w = await storage.run(lambda: (uploads.hash_state(uid, start), uploads.writer(uid)))
    pending, failed = bytearray(), False
    try:
        if w.size != start:
            raise APIError(ec.BLOB_UPLOAD_INVALID, "upload changed while receiving")
        content = request.content
        timeout = request.app[STATE].config.read_timeout
        while True:
            try:
                chunk = await asyncio.wait_for(content.readany(), timeout)
            except TimeoutError:
                raise APIError(ec.BLOB_UPLOAD_INVALID, f"no data received for {timeout:g}s", status=408)
            if not chunk:
                break
            if st is not None:
                st.hash.update(chunk)
            if storage.inline:
                w.write(chunk)
                continue
            pending += chunk
            if len(pending) >= _BATCH:
                await storage.run(w.write, bytes(pending))
                pending.clear()
        if pending:
            await storage.run(w.write, bytes(pending))
        size = w.size
        if st is not None:
            st.size = size
        return size
    except BaseException:
        failed = True
        uploads.hashes.pop(uid, None)
        raise
    finally:  # shielded: a client gone mid-body must still release the writer (and its upload lock)
        await asyncio.shield(storage.run(_release, w, start if failed else None))


def _release(w: FileWriter, roll_back_to: int | None) -> None:
    try:
        if roll_back_to is not None:
            w.truncate(roll_back_to)
    finally:
        w.close()


def _move_in(repo: Repository, uid: str) -> int:
    """Make the verified upload durable; its size."""
    size = repo.uploads.size(uid) or 0
    w = repo.uploads.writer(uid)
    try:
        w.commit()
    finally:
        w.close()
    return size


def _adopt(ctx: RequestContext, repo: Repository, uid: str, d: Digest) -> None:
    ctx.state.registry.blobs.adopt(repo.uploads.data_path(uid), d)
    repo.blobs.link(d)


async def _commit(ctx: RequestContext, repo: Repository, uid: str, d: Digest, request: web.Request) -> None:
    """Verify the upload hashes to ``d``; then move it into the blob store and link it."""
    uploads, run = repo.uploads, ctx.state.storage.run
    st = await run(lambda: uploads.hash_state(uid, uploads.size(uid) or 0))
    if st is not None and d.algorithm == "sha256":
        got = await run(uploads.digest_of, uid, d.algorithm)
    else:
        got = await asyncio.to_thread(uploads.digest_of, uid, d.algorithm)
    if got != d:
        await run(uploads.remove, uid)
        raise APIError(ec.DIGEST_INVALID, detail={"expected": str(d), "computed": str(got)})
    size = await run(_move_in, repo, uid)
    async with ctx.state.gc_lock.shared():
        await run(_adopt, ctx, repo, uid, d)
    await run(uploads.remove, uid)
    ctx.state.upload_locks.pop(uid, None)
    ctx.state.notifier.blob_event("push", repo.name, d, size, request, ctx.actor)


def _mountable(ctx: RequestContext, source: str, d: Digest) -> bool:
    return ctx.state.registry.repository(source).blobs.stat(d) is not None


async def start_upload(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    repo, run = ctx.repository, ctx.state.storage.run
    mount, source = request.query.get("mount"), request.query.get("from", "")
    if mount is not None:
        d = parse_digest(mount)
        may = is_valid_name(source) and await ctx.state.auth.may_pull(request, source)
        if may and await run(_mountable, ctx, source, d):
            async with ctx.state.gc_lock.shared():
                await run(repo.blobs.link, d)
            ctx.state.notifier.blob_event("mount", repo.name, d, 0, request, ctx.actor)
            return _blob_created(repo, d)
    digest_q = request.query.get("digest")
    if digest_q is not None:
        d = parse_digest(digest_q)
        uid = await run(repo.uploads.create)
        try:
            await _receive(request, ctx, repo, uid, 0)
            await _commit(ctx, repo, uid, d, request)
        finally:
            await run(repo.uploads.remove, uid)
        return _blob_created(repo, d)
    uid = await run(repo.uploads.create)
    return web.Response(status=202, headers=_upload_headers(repo, uid, 0))


async def _existing_upload(ctx: RequestContext) -> tuple[Repository, str, int]:
    repo = ctx.repository
    uid = ctx.params["uuid"]
    size = await ctx.state.storage.run(repo.uploads.size, uid) if is_upload_id(uid) else None
    if size is None:
        raise APIError(ec.BLOB_UPLOAD_UNKNOWN, detail={"uuid": uid})
    return repo, uid, size


def _check_content_range(request: web.Request, repo: Repository, uid: str, size: int) -> int | None:
    """The declared chunk length, after refusing a chunk that does not start at ``size``."""
    header = request.headers.get("Content-Range")
    if not header:
        return None
    m = _CONTENT_RANGE_RE.match(header.strip())
    if not m:
        raise APIError(ec.BLOB_UPLOAD_INVALID, f"invalid Content-Range {header!r}")
    start, end = int(m.group(1)), int(m.group(2))
    if start != size or end < start:
        raise APIError(
            ec.RANGE_INVALID,
            f"chunk {start}-{end} does not continue the upload at {size}",
            status=416,
            headers=_upload_headers(repo, uid, size),
        )
    return end - start + 1


def _roll_back(repo: Repository, uid: str, size: int) -> None:
    w = repo.uploads.writer(uid)
    try:
        w.truncate(size)
    finally:
        w.close()
    repo.uploads.hashes.pop(uid, None)


async def _receive_checked(request: web.Request, ctx: RequestContext, repo: Repository, uid: str, size: int) -> int:
    declared = _check_content_range(request, repo, uid, size)
    new_size = await _receive(request, ctx, repo, uid, size)
    if declared is not None and new_size - size != declared:
        await ctx.state.storage.run(_roll_back, repo, uid, size)
        raise APIError(ec.SIZE_INVALID, detail={"declared": declared, "received": new_size - size}, status=416,
                       headers=_upload_headers(repo, uid, size))
    return new_size


async def patch_upload(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    repo, uid, _ = await _existing_upload(ctx)
    async with ctx.state.upload_lock(uid):
        repo, uid, size = await _existing_upload(ctx)
        new_size = await _receive_checked(request, ctx, repo, uid, size)
    return web.Response(status=202, headers=_upload_headers(repo, uid, new_size))


async def finish_upload(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    repo, uid, _ = await _existing_upload(ctx)
    digest_q = request.query.get("digest")
    if not digest_q:
        raise APIError(ec.DIGEST_INVALID, "digest query parameter missing")
    d = parse_digest(digest_q)
    async with ctx.state.upload_lock(uid):
        repo, uid, size = await _existing_upload(ctx)
        await _receive_checked(request, ctx, repo, uid, size)
        await _commit(ctx, repo, uid, d, request)
    return _blob_created(repo, d)


async def upload_status(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    repo, uid, size = await _existing_upload(ctx)
    return web.Response(status=204, headers=_upload_headers(repo, uid, size))


async def cancel_upload(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    repo, uid, _ = await _existing_upload(ctx)
    await ctx.state.storage.run(repo.uploads.remove, uid)
    ctx.state.upload_locks.pop(uid, None)
    return web.Response(status=204, headers={"Content-Length": "0"})
