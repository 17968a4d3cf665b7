"""Connections that cannot starve the registry: a header deadline, a cap per client address and a
file-descriptor limit raised to the hard one.

:class:`GuardedSite` is aiohttp's ``TCPSite`` with every connection's protocol wrapped in a
:class:`_Guarded` one: a client that does not finish its first request's headers within
``http.headertimeout`` is disconnected (a slowloris holds nothing for long), and a client address
already holding ``http.maxconnsperclient`` connections has further ones closed at once. Between
requests aiohttp's keep-alive timeout (``http.idletimeout``) closes idle connections.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from typing import Any, cast

from aiohttp import web

from strata.server.config import ConnectionLimits

__all__ = ["ConnectionGuard", "GuardedSite", "raise_nofile_limit"]

log = logging.getLogger("strata.registry")

_END_OF_HEADERS = b"\r\n\r\n"


def raise_nofile_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (as Go does for distribution); the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
        except (ValueError, OSError):
            return soft
    return soft


class ConnectionGuard:
    """Counts open connections per client address."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: Counter[str] = Counter()

    def admit(self, client: str) -> bool:
        cap = self.limits.per_client
        if cap and self.open[client] >= cap:
            return False
        self.open[client] += 1
        return True

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]

    def wrap(self, inner: asyncio.Protocol) -> asyncio.Protocol:
        return _Guarded(inner, self)


class _Guarded(asyncio.Protocol):
    """Forwards everything to aiohttp's protocol; enforces the header deadline and the cap."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self.inner = inner
        self.guard = guard
        self.client: str | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, base)
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self.guard.admit(client):
            log.warning("closing a connection from %s: %d connections already open", client,
                        self.guard.limits.per_client)
            transport.abort()
            return
        self.client = client
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.guard.limits.header_timeout, self._too_slow)
        self.inner.connection_made(transport)

    def _too_slow(self) -> None:
        self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            log.info("closing a connection from %s: no request headers within %ss", self.client,
                     self.guard.limits.header_timeout)
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.timer is not None:
            seen = self.tail + data
            if _END_OF_HEADERS in seen:
                self.timer.cancel()
                self.timer = None
            self.tail = seen[-3:]
        if self.client is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.client is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.client is None:
            return
        self.guard.release(self.client)
        self.client = None
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class GuardedSite(web.TCPSite):
    """``TCPSite`` whose connections go through a :class:`ConnectionGuard`."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard, **kw: Any) -> None:
        super().__init__(runner, host, port, **kw)
        self.guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: self.guard.wrap(server()), self._host, self._port, ssl=self._ssl_context,
            backlog=self._backlog, reuse_address=self._reuse_address, reuse_port=self._reuse_port,
            ssl_handshake_timeout=self.guard.limits.header_timeout if self._ssl_context else None,
        )
