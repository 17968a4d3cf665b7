"""The registry as a pull-through cache (``proxy`` in the config): ``install(app, state)`` turns it on.

- ``config``: the ``proxy`` section (distribution's ``remoteurl``/``username``/``password``/``ttl``, plus
  upstreams by name prefix and local namespaces);
- ``upstream``: one upstream through strata's registry client, run in a thread pool;
- ``blobfetch``: one download streamed to every waiting client, stored only once verified;
- ``cache``: what the manifest and blob handlers ask when something is not here yet.

Writes to a proxied repository (uploads, manifest pushes, deletes) are refused with distribution's
``UNSUPPORTED``, after the client's credentials were checked as for any push.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from strata.distribution import errcodes as ec
from strata.server.auth.base import Scope
from strata.server.handlers.base import APIError, ServerState
from strata.server.names import is_valid_name
from strata.server.proxy.cache import ProxyCache
from strata.server.proxy.config import ProxyConfig, Upstream, parse_proxy_config
from strata.server.routes import match_v2

__all__ = ["PROXY", "ProxyCache", "ProxyConfig", "Upstream", "install", "parse_proxy_config", "proxy_of"]

PROXY = web.AppKey("strata_proxy", ProxyCache)
_READS = ("GET", "HEAD", "OPTIONS")


def install(app: web.Application, state: ServerState) -> ProxyCache | None:
    """Turn the cache on when the config has a ``proxy`` section; raises ``ConfigError`` for a bad one."""
    config = parse_proxy_config(state.config.raw)
    if not config.enabled:
        return None
    cache = ProxyCache(config, state)
    app[PROXY] = cache
    app.middlewares.append(_refuse_writes)
    app.on_shutdown.append(cache.close)
    return cache


def proxy_of(request: web.Request) -> ProxyCache | None:
    return request.app.get(PROXY)


@web.middleware
async def _refuse_writes(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    cache = request.app.get(PROXY)
    if cache is not None and request.method not in _READS and request.path.startswith("/v2/"):
        route = match_v2(request.path[len("/v2/") :])
        name = route.repo if route is not None else None
        if route is not None and name is not None and is_valid_name(name) and cache.proxied(name):
            deleting = request.method == "DELETE" and route.name in ("blob", "manifest")
            actions = frozenset({"delete"} if deleting else {"pull", "push"})
            await cache.state.auth.authorize(request, [Scope("repository", name, actions)])
            raise APIError(ec.UNSUPPORTED, detail={"name": name, "reason": "a pull-through cache of an upstream"})
    return await handler(request)
