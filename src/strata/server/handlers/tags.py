"""``GET /v2/<name>/tags/list`` and ``GET /v2/_catalog`` with ``n``/``last`` pagination."""

from __future__ import annotations

from aiohttp import web

from strata.distribution import errcodes as ec
from strata.server.handlers.base import APIError, RequestContext, paginate
from strata.server.proxy import proxy_of

__all__ = ["catalog", "list_tags"]


def _tags(ctx: RequestContext) -> list[str]:
    repo = ctx.repository
    if not ctx.state.registry.exists(repo.name):
        raise APIError(ec.NAME_UNKNOWN, detail={"name": repo.name})
    return repo.tags.all()


async def list_tags(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    repo = ctx.repository
    proxy = proxy_of(request)
    names = await proxy.tags(repo) if proxy is not None else None  # a pull-through cache asks its upstream
    if names is None:
        names = await ctx.state.storage.run(_tags, ctx)
    tags, headers = paginate(names, request, f"/v2/{repo.name}/tags/list")
    return web.json_response({"name": repo.name, "tags": tags}, headers=headers)


async def catalog(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    names = await ctx.state.storage.run(ctx.state.registry.repositories)
    allowed = [n for n in names if await ctx.state.auth.may_pull(request, n)]
    page, headers = paginate(allowed, request, "/v2/_catalog")
    return web.json_response({"repositories": page}, headers=headers)
