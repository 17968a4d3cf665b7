"""What every handler shares: the API error type, server state, and small request helpers."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from aiohttp import web

from strata.digest import Digest
from strata.distribution import errcodes as ec
from strata.distribution.errcodes import ErrorCode
from strata.errors import InvalidDigest, StrataError
from strata.server.config import RegistryConfig
from strata.server.storage.driver import StorageDriver
from strata.server.storage.registry import Registry, Repository

if TYPE_CHECKING:
    from strata.server.auth.base import Authenticator
    from strata.server.gc import GCLock
    from strata.server.metrics import Metrics
    from strata.server.notify import Notifier

__all__ = [
    "STATE",
    "APIError",
    "Handler",
    "RequestContext",
    "ServerState",
    "StorageRunner",
    "error_response",
    "paginate",
    "parse_digest",
    "state_of",
]

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")


class APIError(StrataError):
    """A spec error answer: code (with its status), message, detail and extra headers."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        detail: object = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        more: list[tuple[ErrorCode, str | None, object]] | None = None,
    ) -> None:
        super().__init__(message or code.message)
        self.code = code
        self.detail = detail
        self.status = status or code.status
        self.headers = headers or {}
        self.errors: list[tuple[ErrorCode, str | None, object]] = [(code, message, detail), *(more or [])]


def error_response(err: APIError, method: str = "GET") -> web.Response:
    extra = {k: v for k, v in err.headers.items() if k.lower() != "content-length"}
    headers = {"Content-Type": "application/json; charset=utf-8", **extra}
    body = json.dumps(ec.error_body(err.errors)).encode()
    if method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return web.Response(status=err.status, headers=headers)
    return web.Response(status=err.status, body=body, headers=headers)


P = ParamSpec("P")
T = TypeVar("T")

# drivers whose calls are local and fast enough to make from the event loop (a thread hop costs more)
_INLINE_DRIVERS = frozenset({"filesystem", "inmemory"})
STORAGE_THREADS = 32  # remote calls in flight per worker; boto3's pool holds at least this many connections


class StorageRunner:
    """Runs storage work for the handlers: inline on a local driver, else in a bounded thread pool so
    one slow remote call (S3: a network round trip each) never stalls the event loop's other requests."""

    def __init__(self, driver: StorageDriver, threads: int = STORAGE_THREADS) -> None:
        self.inline = driver.name in _INLINE_DRIVERS
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None or self._pid != os.getpid():  # threads do not survive a worker's fork
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="strata-storage")
            self._pid = os.getpid()
        return self._pool

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self.inline:
            return fn(*args, **kwargs)
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor(), call)


@dataclass
class ServerState:
    config: RegistryConfig
    registry: Registry
    auth: Authenticator
    notifier: Notifier
    metrics: Metrics
    gc_lock: GCLock
    upload_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    storage: StorageRunner = field(init=False)

    def __post_init__(self) -> None:
        self.storage = StorageRunner(self.registry.blobs.driver)

    def upload_lock(self, uid: str) -> asyncio.Lock:
        lock = self.upload_locks.get(uid)
        if lock is None:
            lock = self.upload_locks[uid] = asyncio.Lock()
        return lock


STATE = web.AppKey("strata_state", ServerState)
Handler = Callable[[web.Request, "RequestContext"], Awaitable[web.StreamResponse]]


@dataclass
class RequestContext:
    """Per request: the matched parameters, the repository (if any) and the actor."""

    state: ServerState
    params: dict[str, str]
    repo: Repository | None
    actor: str | None

    @property
    def repository(self) -> Repository:
        assert self.repo is not None
        return self.repo


def state_of(request: web.Request) -> ServerState:
    return request.app[STATE]


def parse_digest(text: str, code: ErrorCode = ec.DIGEST_INVALID) -> Digest:
    try:
        return Digest.parse(text)
    except InvalidDigest as e:
        raise APIError(code, f"invalid digest: {e}", {"digest": text})


def paginate(items: list[str], request: web.Request, path: str) -> tuple[list[str], dict[str, str]]:
    """Apply ``n`` and ``last``; returns the page and a ``Link`` header when more remain."""
    last = request.query.get("last")
    if last:
        items = [i for i in items if i > last]
    n_text = request.query.get("n")
    if n_text is None or n_text == "":
        return items, {}
    try:
        n = int(n_text)
    except ValueError:
        raise APIError(ec.PAGINATION_NUMBER_INVALID, detail={"n": n_text})
    if n < 0:
        raise APIError(ec.PAGINATION_NUMBER_INVALID, detail={"n": n_text})
    page = items[:n]
    headers = {}
    if len(items) > n and page:
        headers["Link"] = f'<{path}?last={page[-1]}&n={n}>; rel="next"'
    return page, headers
