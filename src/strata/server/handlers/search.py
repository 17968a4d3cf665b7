"""``GET /v1/search`` in Docker Hub's response shape, so ``docker search host:port/term`` works."""

from __future__ import annotations

import json
import math

from aiohttp import web

from strata.server.handlers.base import state_of

__all__ = ["ping_v1", "search"]


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        value = int(text) if text else default
    except ValueError:
        value = default
    return max(low, min(high, value))


async def search(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    query = request.query.get("q", "")
    n = _int(request.query.get("n"), 25, 1, 100)
    page = _int(request.query.get("page"), 1, 1, 1 << 30)
    term = query.lower().rsplit("/", 1)[-1] if "/" in query and "." in query.split("/", 1)[0] else query.lower()
    names = [name for name in await state.storage.run(state.registry.repositories) if term in name]
    allowed = [name for name in names if await state.auth.may_pull(request, name)]
    start = (page - 1) * n
    results = [
        {"name": name, "description": "", "star_count": 0, "is_official": False, "is_automated": False}
        for name in allowed[start : start + n]
    ]
    body = {
        "num_pages": max(1, math.ceil(len(allowed) / n)),
        "num_results": len(allowed),
        "results": results,
        "page_size": n,
        "query": query,
        "page": page,
    }
    return web.Response(body=json.dumps(body).encode(), content_type="application/json")


async def ping_v1(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=b"true",
        content_type="application/json",
        headers={"X-Docker-Registry-Standalone": "true", "X-Docker-Registry-Version": "strata"},
    )
