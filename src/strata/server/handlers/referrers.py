"""``GET /v2/<name>/referrers/<digest>``: an OCI index of manifests whose subject is the digest."""

from __future__ import annotations

import json

from aiohttp import web

from strata.digest import Digest
from strata.image import mediatypes as mt
from strata.server.handlers.base import RequestContext, parse_digest
from strata.server.handlers.manifests import manifest_media_type
from strata.server.storage.manifests import ManifestInvalid, parse_manifest
from strata.server.storage.registry import Repository

__all__ = ["list_referrers"]


def _descriptors(repo: Repository, subject: Digest, wanted: str | None) -> list[dict[str, object]]:
    descriptors: list[dict[str, object]] = []
    for d in sorted(repo.manifests.referrers(subject)):
        data = repo.manifests.get(d)
        if data is None:
            continue
        try:
            parsed = parse_manifest(data, None)
        except ManifestInvalid:
            continue
        if wanted and parsed.artifact_type != wanted:
            continue
        desc: dict[str, object] = {"mediaType": manifest_media_type(data), "digest": str(d), "size": len(data)}
        if parsed.artifact_type:
            desc["artifactType"] = parsed.artifact_type
        if parsed.annotations:
            desc["annotations"] = parsed.annotations
        descriptors.append(desc)
    return descriptors


async def list_referrers(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    subject = parse_digest(ctx.params["digest"])
    wanted = request.query.get("artifactType")
    descriptors = await ctx.state.storage.run(_descriptors, ctx.repository, subject, wanted)
    body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}
    headers = {"Content-Type": mt.OCI_INDEX}
    if wanted:
        headers["OCI-Filters-Applied"] = "artifactType"
    return web.Response(status=200, body=json.dumps(body).encode(), headers=headers)
