"""The aiohttp application: ``create_app(config)`` and ``serve(config)``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from logging.handlers import QueueHandler, QueueListener

from aiohttp import web

from strata.distribution import errcodes as ec
from strata.errors import os_error_text
from strata.server.auth.base import Authenticator, NoAuth, Scope
from strata.server.config import TLS_VERSIONS, ConfigError, RegistryConfig
from strata.server.connections import ConnectionGuard, GuardedSite, raise_nofile_limit
from strata.server.gc import run_schedule, run_upload_purger
from strata.server.handlers import blobs, manifests, referrers, search, tags, uploads
from strata.server.handlers.base import (
    API_VERSION_HEADER,
    STATE,
    APIError,
    Handler,
    RequestContext,
    ServerState,
    error_response,
    state_of,
)
from strata.server.metrics import Metrics
from strata.server.names import is_valid_name
from strata.server.notify import Notifier
from strata.server.proxy import install as install_proxy
from strata.server.ratelimit import EXEMPT_PATHS, RateLimiter, client_key, retry_after_header
from strata.server.routes import Route, match_v2
from strata.server.sharedstate import build_shared
from strata.server.storage.driver import StorageDriver
from strata.server.storage.filesystem import FilesystemDriver
from strata.server.storage.inmemory import InMemoryDriver
from strata.server.ui import install as install_ui

__all__ = ["ACCESS_LOG_FORMAT", "create_app", "create_debug_app", "make_authenticator", "serve", "ssl_context"]

log = logging.getLogger("strata.registry")
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf "%{User-Agent}i"'

_ROUTE = web.RequestKey("strata_route", str)

_HANDLERS: dict[tuple[str, str], Handler] = {
    ("blob", "GET"): blobs.get_blob,
    ("blob", "HEAD"): blobs.get_blob,
    ("blob", "DELETE"): blobs.delete_blob,
    ("blob-upload", "POST"): uploads.start_upload,
    ("blob-upload-chunk", "PATCH"): uploads.patch_upload,
    ("blob-upload-chunk", "PUT"): uploads.finish_upload,
    ("blob-upload-chunk", "GET"): uploads.upload_status,
    ("blob-upload-chunk", "DELETE"): uploads.cancel_upload,
    ("manifest", "GET"): manifests.get_manifest,
    ("manifest", "HEAD"): manifests.get_manifest,
    ("manifest", "PUT"): manifests.put_manifest,
    ("manifest", "DELETE"): manifests.delete_manifest,
    ("tags", "GET"): tags.list_tags,
    ("referrers", "GET"): referrers.list_referrers,
    ("catalog", "GET"): tags.catalog,
}


def _scopes(route: Route, request: web.Request) -> list[Scope]:
    """What a request needs, as distribution asks it: a ``from`` (cross-repository mount) also
    needs pull on that repository, whatever the authenticator."""
    if route.name == "catalog":
        return [Scope("registry", "catalog", frozenset({"*"}))]
    if route.repo is None:
        return []
    method = request.method
    if method == "DELETE" and route.name in ("blob", "manifest"):
        actions = frozenset({"delete"})
    elif method in ("GET", "HEAD") and route.name != "blob-upload-chunk":
        actions = frozenset({"pull"})
    else:
        actions = frozenset({"pull", "push"})
    scopes = [Scope("repository", route.repo, actions)]
    source = request.query.get("from", "")
    if source:
        scopes.append(Scope("repository", source, frozenset({"pull"})))
    return scopes


async def _base(request: web.Request) -> web.StreamResponse:
    await state_of(request).auth.authorize(request, [])
    return web.json_response({})


async def _dispatch(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    route = match_v2(request.match_info["tail"])
    if route is None:
        raise APIError(ec.NAME_UNKNOWN, "unknown API route", status=404)
    if route.name == "base":
        return await _base(request)
    if route.repo is not None and not is_valid_name(route.repo):
        raise APIError(ec.NAME_INVALID, detail={"name": route.repo})
    handler = _HANDLERS.get((route.name, request.method))
    if handler is None:
        raise APIError(ec.UNSUPPORTED, f"{request.method} is not supported here", status=405)
    actor = await state.auth.authorize(request, _scopes(route, request))
    repo = state.registry.repository(route.repo) if route.repo is not None else None
    request[_ROUTE] = route.name
    return await handler(request, RequestContext(state, route.params, repo, actor))


@web.middleware
async def _errors_and_metrics(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    state = request.app[STATE]
    started = time.perf_counter()
    state.metrics.in_flight += 1
    status = 500
    resp: web.StreamResponse | None = None
    try:
        try:
            resp = await handler(request)
        except APIError as e:
            resp = error_response(e, request.method)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:
            log.exception("internal error serving %s %s", request.method, request.path)
            resp = error_response(APIError(ec.UNKNOWN, detail=type(e).__name__), request.method)
        status = resp.status
        return resp
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        state.metrics.in_flight -= 1
        sent = resp.content_length if resp is not None and resp.content_length else 0
        state.metrics.observe(
            request.get(_ROUTE, "other"),
            request.method,
            status,
            time.perf_counter() - started,
            request.content_length or 0,
            sent,
        )


_LIMITER = web.AppKey("strata_ratelimiter", RateLimiter)


@web.middleware
async def _rate_limit(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    limiter = request.app.get(_LIMITER)
    if limiter is not None and request.path not in EXEMPT_PATHS:
        wait = limiter.take(client_key(request.remote, request.headers.get("X-Forwarded-For"),
                                       request.app[STATE].config.trusted_proxies))  # fmt: skip
        if wait > 0:
            raise APIError(ec.TOOMANYREQUESTS, detail={"retryAfter": round(wait, 3)},
                           headers={"Retry-After": retry_after_header(wait)})
    return await handler(request)


async def _add_api_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault(*API_VERSION_HEADER)
    for name, values in request.app[STATE].config.headers.items():
        if name not in response.headers:
            for value in values:
                response.headers.add(name, value)


async def _metrics(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    extra: dict[str, float] = {}
    for name, (ok, failed, queued) in state.notifier.stats().items():
        safe = "".join(c if c.isalnum() else "_" for c in name)
        extra[f"strata_registry_notifications_delivered_{safe}"] = ok
        extra[f"strata_registry_notifications_failures_{safe}"] = failed
        extra[f"strata_registry_notifications_pending_{safe}"] = queued
    return web.Response(
        body=state.metrics.render(extra).encode(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def _health(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    try:
        state.registry.driver.stat("/")
    except Exception as e:
        return web.Response(status=503, body=json.dumps({"storagedriver": str(e)}).encode(),
                            content_type="application/json")
    return web.json_response({})


def make_driver(config: RegistryConfig) -> StorageDriver:
    storage = config.raw.get("storage")
    if isinstance(storage, dict) and "s3" in storage:
        from strata.server.storage.s3 import S3Driver

        return S3Driver.from_parameters(storage["s3"], storage.get("redirect"))
    if config.root:
        return FilesystemDriver(config.root)
    return InMemoryDriver()


def make_authenticator(config: RegistryConfig) -> Authenticator:
    if config.htpasswd is not None:
        from strata.server.auth.htpasswd import HtpasswdAuth

        return HtpasswdAuth(config.htpasswd.realm, config.htpasswd.path)
    if config.token is not None:
        from strata.server.auth.origin import PublicOrigin
        from strata.server.auth.token import TokenAuth

        origin = PublicOrigin(config.host, bool(config.tls_certificate), config.trusted_proxies, config.addr)
        return TokenAuth(config.token, origin)
    return NoAuth()


def create_app(config: RegistryConfig, driver: StorageDriver | None = None) -> web.Application:
    """The registry as an aiohttp application (no sockets yet)."""
    driver = driver or make_driver(config)
    shared = build_shared(config, driver)  # registry, GC lock and rate limiter: in Redis when configured
    auth = make_authenticator(config)
    state = ServerState(config, shared.registry, auth, Notifier(config.notifications), Metrics(), shared.gc_lock)
    app = web.Application(middlewares=[_errors_and_metrics, _rate_limit], client_max_size=config.max_manifest_size)
    app[STATE] = state
    install_ui(app, state)
    install_proxy(app, state)
    if shared.limiter is not None:
        app[_LIMITER] = shared.limiter
    app.on_response_prepare.append(_add_api_header)
    app.router.add_route("*", "/v2", _dispatch_base)
    app.router.add_route("*", "/v2/{tail:.*}", _dispatch)
    if config.search:
        app.router.add_get("/v1/search", search.search)
        app.router.add_get("/v1/_ping", search.ping_v1)
    app.router.add_get("/debug/health", _health)
    app.router.add_get("/healthz", _health)
    app.router.add_routes(auth.routes())
    app.on_startup.append(_start_background)
    app.on_cleanup.append(_stop_background)
    return app


def create_debug_app(api: web.Application, metrics_path: str | None = "/metrics") -> web.Application:
    """distribution's debug server (``http.debug.addr``): health, and Prometheus metrics at
    ``metrics_path`` -- never on the API port, where anyone could read them."""
    app = web.Application()
    app[STATE] = api[STATE]
    if metrics_path:
        app.router.add_get(metrics_path, _metrics)
    app.router.add_get("/debug/health", _health)
    return app


async def _dispatch_base(request: web.Request) -> web.StreamResponse:
    return await _base(request)


_TASKS = web.AppKey("strata_background_tasks", list[asyncio.Task[None]])


async def _start_background(app: web.Application) -> None:
    state = app[STATE]
    await state.notifier.start()
    tasks = app[_TASKS] = []
    gc = state.config.gc
    if gc.interval > 0:
        tasks.append(asyncio.create_task(
            run_schedule(
                state.registry, state.gc_lock, gc.interval, delete_untagged=gc.deleteuntagged,
                grace_period=gc.graceperiod, upload_purge_age=gc.uploadpurgeage,
            )
        ))
    purge = state.config.uploadpurging
    if purge.enabled:
        tasks.append(asyncio.create_task(run_upload_purger(state.registry, purge.age, purge.interval, purge.dryrun)))


async def _stop_background(app: web.Application) -> None:
    for task in app.get(_TASKS, []):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[STATE].notifier.close()


_TLS_VERSIONS = dict(zip(TLS_VERSIONS, (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2,
                                         ssl.TLSVersion.TLSv1_3), strict=True))


def ssl_context(config: RegistryConfig) -> ssl.SSLContext | None:
    """The server's TLS: its certificate, ``minimumtls``, and with ``clientcas`` a client certificate
    signed by one of those CAs required of every client (distribution's mutual TLS)."""
    if not config.tls_certificate:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.tls_certificate, config.tls_key)
    if config.tls_minimum:
        ctx.minimum_version = _TLS_VERSIONS[config.tls_minimum]
    for ca in config.tls_clientcas:
        try:
            ctx.load_verify_locations(cafile=ca)
        except ssl.SSLError as e:
            raise ConfigError(f"could not read http.tls.clientcas {ca}: {e.reason or e}") from None
        except OSError as e:
            raise ConfigError(f"could not read http.tls.clientcas {ca}: {os_error_text(e)}") from None
    if config.tls_clientcas:
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


async def _start_debug(app: web.Application, config: RegistryConfig, reuse_port: bool) -> web.AppRunner | None:
    if not config.debug_addr:
        return None
    runner = web.AppRunner(create_debug_app(app, config.metrics_path), access_log=None)
    await runner.setup()
    host, port = _split_addr(config.debug_addr)
    try:
        await web.TCPSite(runner, host, port, reuse_address=True, reuse_port=reuse_port or None).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("debug server listening on %s", config.debug_addr)
    return runner


@contextlib.contextmanager
def _access_log(enabled: bool) -> Iterator[logging.Logger | None]:
    """``strata.registry.access``, whose lines a thread writes to the root logger's handlers (a write
    and flush per request is a blocking system call the event loop would otherwise make); what is
    queued is written when serving ends."""
    logger = logging.getLogger("strata.registry.access")
    targets = logging.getLogger().handlers
    if not enabled or not targets or not logger.propagate or logger.handlers:
        yield logger if enabled else None  # already queued by another server in this process, or custom
        return
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler, listener = QueueHandler(q), QueueListener(q, *targets, respect_handler_level=True)
    logger.addHandler(handler)
    logger.propagate = False
    listener.start()
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        listener.stop()


async def serve(config: RegistryConfig, ready: asyncio.Event | None = None, *, reuse_port: bool = False) -> None:
    """Serve until cancelled. Logs one access line per request to ``strata.registry.access``."""
    with _access_log(config.accesslog) as access_log:
        await _serve(config, ready, reuse_port, access_log)


async def _serve(config: RegistryConfig, ready: asyncio.Event | None, reuse_port: bool,
                 access_log: logging.Logger | None) -> None:  # fmt: skip
    nofile = raise_nofile_limit()
    log.debug("open file limit: %d", nofile)
    app = create_app(config)
    runner = web.AppRunner(
        app,
        access_log=access_log,
        access_log_format=ACCESS_LOG_FORMAT,
        handler_cancellation=False,
        keepalive_timeout=config.limits.idle_timeout,
    )
    await runner.setup()
    debug: web.AppRunner | None = None
    try:
        host, port = _split_addr(config.addr)
        site = GuardedSite(runner, host, port, ConnectionGuard(config.limits), ssl_context=ssl_context(config),
                           backlog=1024, reuse_address=True, reuse_port=reuse_port)
        await site.start()
        log.info("listening on %s (%s)", config.addr, "https" if config.tls_certificate else "http")
        debug = await _start_debug(app, config, reuse_port)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        if debug is not None:
            await debug.cleanup()
        await runner.cleanup()
