"""``GET``/``HEAD``/``PUT``/``DELETE /v2/<name>/manifests/<reference>``."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from aiohttp import web

from strata.digest import Digest
from strata.distribution import errcodes as ec
from strata.errors import InvalidArchive
from strata.image import mediatypes as mt
from strata.image.spec import load_json
from strata.server.handlers.base import STATE, APIError, RequestContext, ServerState, parse_digest
from strata.server.names import is_valid_tag
from strata.server.proxy import ProxyCache, proxy_of
from strata.server.storage.manifests import ManifestInvalid, ParsedManifest, parse_manifest
from strata.server.storage.registry import Repository

__all__ = [
    "delete_manifest", "get_manifest", "manifest_media_type", "put_manifest", "remove_manifest", "remove_tag",
]

KNOWN_TYPES = (*mt.MANIFEST_TYPES, *mt.INDEX_TYPES)


def _split_reference(ref: str, method: str = "PUT") -> tuple[str | None, Digest | None]:
    """A reference is a tag or a digest. A name that is neither cannot name anything stored: reading
    or deleting it is MANIFEST_UNKNOWN (404, as distribution's router and the OCI conformance suite
    answer); only a push to it is TAG_INVALID."""
    if ":" in ref:
        return None, parse_digest(ref)
    if not is_valid_tag(ref):
        if method != "PUT":
            raise APIError(ec.MANIFEST_UNKNOWN, detail={"reference": ref})
        raise APIError(ec.TAG_INVALID, f"invalid tag {ref!r}", {"tag": ref})
    return ref, None


def _load(data: bytes) -> Any:
    """A stored manifest's JSON (depth-bounded), or None when it is not JSON."""
    try:
        return load_json(data, "manifest")
    except InvalidArchive:
        return None


def manifest_media_type(data: bytes) -> str:
    """The media type a stored manifest declares (or implies)."""
    doc = _load(data)
    if isinstance(doc, dict):
        declared = doc.get("mediaType")
        if isinstance(declared, str) and declared:
            return declared
        if "manifests" in doc:
            return mt.OCI_INDEX
    return mt.OCI_MANIFEST


def _accepted(request: web.Request) -> set[str]:
    out: set[str] = set()
    for value in request.headers.getall("Accept", []):
        for part in value.split(","):
            media = part.split(";")[0].strip()
            if media:
                out.add(media)
    return out


def _negotiate(request: web.Request, repo: Repository, d: Digest, data: bytes) -> tuple[Digest, bytes, str]:
    media = manifest_media_type(data)
    accepted = _accepted(request)
    wanted = accepted & set(KNOWN_TYPES)
    if not wanted or media in wanted or "*/*" in accepted:
        return d, data, media
    if media in mt.INDEX_TYPES:
        child = _platform_child(repo, data, wanted)
        if child is not None:
            return child
    raise APIError(
        ec.MANIFEST_UNKNOWN,
        f"manifest is {media}, which the Accept header does not allow",
        {"mediaType": media, "accept": sorted(accepted)},
    )


def _platform_digests(data: bytes, wanted: set[str]) -> list[Digest]:
    """The linux/amd64 children of an index that a client taking ``wanted`` types could use."""
    doc = _load(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
        return []
    out: list[Digest] = []
    for m in doc["manifests"]:
        if not isinstance(m, dict):
            continue
        plat = m.get("platform") or {}
        if plat.get("os") == "linux" and plat.get("architecture") == "amd64" and m.get("mediaType") in wanted:
            try:
                out.append(Digest.parse(m["digest"]))
            except (KeyError, ValueError):
                continue
    return out


def _platform_child(repo: Repository, data: bytes, wanted: set[str]) -> tuple[Digest, bytes, str] | None:
    """linux/amd64 from an index, for clients that cannot take indexes (distribution does the same)."""
    for cd in _platform_digests(data, wanted):
        child = repo.manifests.get(cd)
        if child is not None:
            return cd, child, manifest_media_type(child)
    return None


async def _proxied_platform_child(request: web.Request, ctx: RequestContext, proxy: ProxyCache, data: bytes) -> None:
    """A pull-through cache fetches the linux/amd64 child an index-less client will be given."""
    wanted = _accepted(request) & set(KNOWN_TYPES)
    if not wanted or wanted & set(mt.INDEX_TYPES) or manifest_media_type(data) not in mt.INDEX_TYPES:
        return
    children = _platform_digests(data, wanted)
    repo = ctx.repository
    if children and not await ctx.state.storage.run(repo.manifests.exists, children[0]):
        await proxy.manifest(repo, str(children[0]), request.method)


def _lookup(repo: Repository, ref: str) -> tuple[Digest, bytes]:
    tag, d = _split_reference(ref, "GET")
    if tag is not None:
        d = repo.tags.get(tag)  # read every time: a retag or a delete anywhere is seen at once
        if d is None:
            raise APIError(ec.MANIFEST_UNKNOWN, detail={"tag": tag})
    assert d is not None
    data = repo.manifests.get(d, tagged=tag is not None)
    if data is None:
        raise APIError(ec.MANIFEST_UNKNOWN, detail={"digest": str(d)})
    return d, data


def _lookup_negotiated(request: web.Request, repo: Repository, ref: str) -> tuple[Digest, bytes, str]:
    """Tag or digest to the manifest this client is given: one unit of storage work."""
    d, data = _lookup(repo, ref)
    if ":" in ref:
        return d, data, manifest_media_type(data)  # a digest pins the content: never substitute it
    return _negotiate(request, repo, d, data)


async def _proxied_lookup(
    request: web.Request, ctx: RequestContext, proxy: ProxyCache, ref: str
) -> tuple[Digest, bytes, str]:
    repo, run = ctx.repository, ctx.state.storage.run
    await proxy.manifest(repo, ref, request.method)  # a pull-through cache brings it (or a tag's news)
    if ":" in ref:
        return await run(_lookup_negotiated, request, repo, ref)
    d, data = await run(_lookup, repo, ref)
    await _proxied_platform_child(request, ctx, proxy, data)
    return await run(_negotiate, request, repo, d, data)


async def get_manifest(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    repo, ref = ctx.repository, ctx.params["reference"]
    proxy = proxy_of(request)
    if proxy is not None:
        d, data, media = await _proxied_lookup(request, ctx, proxy, ref)
    else:
        d, data, media = await ctx.state.storage.run(_lookup_negotiated, request, repo, ref)
    headers = {
        "Content-Type": media,
        "Docker-Content-Digest": str(d),
        "ETag": f'"{d}"',
        "Content-Length": str(len(data)),
    }
    if request.method == "HEAD":
        return web.Response(status=200, headers=headers)
    ctx.state.notifier.manifest_event("pull", repo.name, d, media, len(data), None, request, ctx.actor)
    return web.Response(status=200, body=data, headers=headers)


async def _read_limited(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise APIError(ec.SIZE_INVALID, f"manifest is larger than {limit} bytes", status=413)
    buf = bytearray()
    timeout = request.app[STATE].config.read_timeout
    while True:
        try:
            chunk = await asyncio.wait_for(request.content.readany(), timeout)
        except TimeoutError:
            raise APIError(ec.MANIFEST_INVALID, f"no data received for {timeout:g}s", status=408)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise APIError(ec.SIZE_INVALID, f"manifest is larger than {limit} bytes", status=413)


def _check_references(repo: Repository, parsed: ParsedManifest, ctx: RequestContext) -> None:
    missing: list[tuple[ec.ErrorCode, str | None, object]] = []
    blobs = ctx.state.registry.blobs
    for b in parsed.blobs:
        info = repo.blobs.stat(b)
        if info is None:
            missing.append((ec.MANIFEST_BLOB_UNKNOWN, None, {"digest": str(b)}))
        else:
            blobs.keep_alive(b, info)
    for c in parsed.children:
        if not repo.manifests.exists(c):
            missing.append((ec.MANIFEST_BLOB_UNKNOWN, "manifest unknown to registry", {"digest": str(c)}))
    if missing:
        code, message, detail = missing[0]
        raise APIError(code, message, detail, more=missing[1:])


def _store(
    repo: Repository, parsed: ParsedManifest, ctx: RequestContext, data: bytes, want: Digest | None, tag: str | None
) -> Digest:
    """Check what the manifest references, store it, tag it, link it to its subject (under the GC lock)."""
    _check_references(repo, parsed, ctx)
    d = repo.manifests.put(data, want.algorithm if want is not None else "sha256")
    if tag is not None:
        repo.tags.tag(tag, d)
    if parsed.subject is not None:
        repo.manifests.add_referrer(parsed.subject, d)
    return d


async def put_manifest(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    repo = ctx.repository
    tag, want = _split_reference(ctx.params["reference"])
    data = await _read_limited(request, ctx.state.config.max_manifest_size)
    try:
        parsed = parse_manifest(data, request.headers.get("Content-Type"))
    except ManifestInvalid as e:
        raise APIError(ec.MANIFEST_INVALID, f"manifest invalid: {e}", {"reason": str(e)})
    if want is not None:
        got = Digest(want.algorithm, hashlib.new(want.algorithm, data).hexdigest())
        if got != want:
            raise APIError(ec.DIGEST_INVALID, detail={"expected": str(want), "computed": str(got)})
    async with ctx.state.gc_lock.shared():
        d = await ctx.state.storage.run(_store, repo, parsed, ctx, data, want, tag)
    headers = {
        "Location": f"/v2/{repo.name}/manifests/{d}",
        "Docker-Content-Digest": str(d),
        "Content-Length": "0",
    }
    if parsed.subject is not None:
        headers["OCI-Subject"] = str(parsed.subject)
    ctx.state.notifier.manifest_event("push", repo.name, d, parsed.media_type, len(data), tag, request, ctx.actor)
    return web.Response(status=201, headers=headers)


def _untag(repo: Repository, tag: str) -> Digest | None:
    target = repo.tags.get(tag)
    if target is None or not repo.tags.untag(tag):
        return None
    return target


def _delete_revision(repo: Repository, d: Digest) -> bool:
    data = repo.manifests.get(d)
    if data is None:
        return False
    for t in repo.tags.lookup(d):
        repo.tags.untag(t)
    try:
        parsed: ParsedManifest | None = parse_manifest(data, None)
    except ManifestInvalid:
        parsed = None
    if parsed is not None and parsed.subject is not None:
        repo.manifests.remove_referrer(parsed.subject, d)
    repo.manifests.delete(d)
    return True


def remove_tag(state: ServerState, repo: Repository, tag: str, request: web.Request, actor: str | None) -> bool:
    """Untag (the manifest stays); False when the tag does not exist. Shared by the API and the UI."""
    target = _untag(repo, tag)
    if target is None:
        return False
    state.notifier.manifest_event("delete", repo.name, target, None, 0, tag, request, actor)
    return True


def remove_manifest(
    state: ServerState, repo: Repository, d: Digest, request: web.Request, actor: str | None
) -> bool:
    """Delete a manifest revision, its tags and its referrer link; False when it is not there."""
    if not _delete_revision(repo, d):
        return False
    state.notifier.manifest_event("delete", repo.name, d, None, 0, None, request, actor)
    return True


async def delete_manifest(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    if not ctx.state.config.delete_enabled:
        raise APIError(ec.UNSUPPORTED)  # distribution: "The operation is unsupported."
    repo, run = ctx.repository, ctx.state.storage.run
    tag, d = _split_reference(ctx.params["reference"], "DELETE")
    if tag is not None:
        d = await run(_untag, repo, tag)
        if d is None:
            raise APIError(ec.MANIFEST_UNKNOWN, detail={"tag": tag})
    else:
        assert d is not None
        if not await run(_delete_revision, repo, d):
            raise APIError(ec.MANIFEST_UNKNOWN, detail={"digest": str(d)})
    ctx.state.notifier.manifest_event("delete", repo.name, d, None, 0, tag, request, ctx.actor)
    return web.Response(status=202, headers={"Content-Length": "0"})
