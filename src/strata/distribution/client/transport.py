"""HTTP/1.1 to registries over ``http.client``: pooled keep-alive connections, TLS, streamed bodies, and
the rules for following a redirect.

``Transport.send`` writes one request (a body is bytes, or a factory of chunks sent with a length or
chunked) on a pooled connection, retrying once on a stale keep-alive connection. ``Response`` is the
answer with its body unread; ``Response.drain`` reads what is left (up to a limit) and closes it,
giving the connection back to the pool. ``Hop.redirected`` is the next request of a redirect chain by
Go's rules: credentials (``Authorization``, cookies, a body holding a refresh token) stay on their origin
-- scheme, host and port -- as Go's client keeps them on their host.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urljoin, urlsplit

from strata.distribution.hosts import Endpoint, HostsConfig, ssl_context_for
from strata.errors import TransportError

__all__ = [
    "MAX_REDIRECTS",
    "NETWORK_ERRORS",
    "READ_CHUNK",
    "REDIRECTS",
    "USER_AGENT",
    "Body",
    "Cancelled",
    "Hop",
    "Response",
    "Transport",
    "origin",
]

MAX_REDIRECTS = 10
READ_CHUNK = 1 << 20
USER_AGENT = "strata/0.1.0"
REDIRECTS = (301, 302, 303, 307, 308)
NETWORK_ERRORS = (OSError, http.client.HTTPException, ssl.SSLError)
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "cookie2"})

# A request body: bytes, or a factory giving a fresh iterator of chunks (so it can be re-sent).
Body = bytes | Callable[[], Iterable[bytes]]


class Cancelled(OSError):
    """The client was cancelled (Ctrl-C): a network error no retry or resume may hide."""


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``: two URLs share credentials only when all three are equal."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


@dataclass(frozen=True)
class Hop:
    """One request of a redirect chain."""

    method: str
    url: str
    headers: dict[str, str]
    body: Body | None = None
    length: int | None = None
    secret_body: bool = False  # the body carries credentials (an OAuth2 form with a refresh token)

    def has_credentials(self) -> bool:
        return self.secret_body or any(k.lower() in _CREDENTIAL_HEADERS for k in self.headers)

    def redirected(self, status: int, location: str) -> Hop:
        """The next request after a ``status`` redirect to ``location``, by Go's rules: 301/302/303 turn
        a request other than GET/HEAD into a bodiless GET, 307/308 resend it as it was; a new origin gets
        no credential headers, and a body with credentials is never sent there (an error instead)."""
        url = urljoin(self.url, location)
        method, body, length, secret = self.method, self.body, self.length, self.secret_body
        if status in (301, 302, 303) and method not in ("GET", "HEAD"):
            method, body, length, secret = "GET", None, None, False
        headers = dict(self.headers)
        if origin(url) != origin(self.url):
            headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
            if secret:
                raise TransportError(
                    f'{method.capitalize()} "{url.split("?")[0]}": refusing to send credentials to '
                    f"{urlsplit(url).netloc} on a redirect from {urlsplit(self.url).netloc}"
                )
        if body is None:
            headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        return Hop(method, url, headers, body, length, secret)


class Response:
    """A response whose body has not been read yet; ``close()`` returns the connection to the pool."""

    def __init__(self, url: str, resp: http.client.HTTPResponse, release: Callable[[bool], None]) -> None:
        self.url = url
        self.status = resp.status
        self.reason = resp.reason
        self.headers: Message = resp.headers
        self._resp = resp
        self._release = release
        self._closed = False
        self.endpoint: Endpoint | None = None

    def header(self, name: str, default: str = "") -> str:
        return str(self.headers.get(name, default))

    def read(self, n: int = -1) -> bytes:
        return self._resp.read(n) if n >= 0 else self._resp.read()

    def readinto(self, buf: memoryview) -> int:
        return self._resp.readinto(buf)

    def read_limited(self, limit: int) -> bytes:
        """The whole body, or TransportError-free truncation at ``limit + 1`` bytes (callers check)."""
        data = self._resp.read(limit + 1)
        if len(data) <= limit:
            self.close()
        return data

    def drain(self, limit: int = 64 << 10) -> bytes:
        """Read the rest of the body (at most ``limit + 1`` bytes, so callers can tell "too big") and close."""
        try:
            return self.read_limited(limit)
        finally:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        reusable = self._resp.isclosed() and not self._resp.will_close
        if not reusable:
            self._resp.close()
        self._release(reusable)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Pool:
    """Idle keep-alive connections keyed by (scheme, netloc, TLS context)."""

    def __init__(self, timeout: float) -> None:
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._busy: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()
        self.timeout = timeout
        self.cancelled = threading.Event()

    def get(self, scheme: str, netloc: str, ctx: ssl.SSLContext | None) -> tuple[http.client.HTTPConnection, bool]:
        if self.cancelled.is_set():
            raise Cancelled("cancelled")
        key = (scheme, netloc, id(ctx))
        conn: http.client.HTTPConnection | None = None
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                conn = idle.pop()
                self._busy.add(conn)
                return conn, True
        if scheme == "https":
            conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=ctx, blocksize=READ_CHUNK)
        else:
            conn = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=READ_CHUNK)
        with self._lock:
            self._busy.add(conn)
        return conn, False

    def put(self, scheme: str, netloc: str, ctx: ssl.SSLContext | None, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._busy.discard(conn)
            self._idle.setdefault((scheme, netloc, id(ctx)), []).append(conn)

    def drop(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._busy.discard(conn)
        conn.close()

    def cancel(self) -> None:
        """Make every transfer in flight fail now (sockets shut down) and refuse new ones."""
        self.cancelled.set()
        with self._lock:
            busy = list(self._busy)
        for c in busy:
            sock = c.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.close()

    def close(self) -> None:
        with self._lock:
            conns = [c for lst in self._idle.values() for c in lst]
            self._idle.clear()
        for c in conns:
            c.close()


class Transport:
    """Sends requests over pooled connections; TLS settings come from the endpoint, else from certs.d."""

    def __init__(self, config: HostsConfig, timeout: float) -> None:
        self.config = config
        self._pool = _Pool(timeout)
        self._ctx_cache: dict[str, ssl.SSLContext] = {}

    @property
    def cancelled(self) -> bool:
        return self._pool.cancelled.is_set()

    def cancel(self) -> None:
        """Abort every transfer now (for Ctrl-C): reads and requests fail at once."""
        self._pool.cancel()

    def close(self) -> None:
        self._pool.close()

    def _ctx_for(self, scheme: str, netloc: str, ep: Endpoint) -> ssl.SSLContext | None:
        if scheme != "https":
            return None
        if netloc == ep.netloc and ep.ssl_context is not None:
            return ep.ssl_context
        if netloc not in self._ctx_cache:
            self._ctx_cache[netloc] = ssl_context_for(netloc, self.config)
        return self._ctx_cache[netloc]

    def send(self, ep: Endpoint, hop: Hop) -> Response:
        """Send ``hop`` once (again on a fresh connection if a kept-alive one turns out stale)."""
        parts = urlsplit(hop.url)
        scheme, netloc = parts.scheme, parts.netloc
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        ctx = self._ctx_for(scheme, netloc, ep)
        for attempt in (0, 1):
            conn, reused = self._pool.get(scheme, netloc, ctx)
            try:
                _write_request(conn, hop, target, netloc)
                resp = conn.getresponse()
            except NETWORK_ERRORS:
                self._pool.drop(conn)
                if self._pool.cancelled.is_set():
                    raise Cancelled("cancelled") from None
                if reused and attempt == 0:  # every Body can be sent again (bytes, or a factory)
                    continue
                raise

            def release(reusable: bool, conn: http.client.HTTPConnection = conn) -> None:
                if reusable:
                    self._pool.put(scheme, netloc, ctx, conn)
                else:
                    self._pool.drop(conn)

            return Response(hop.url, resp, release)
        raise AssertionError("unreachable")


def _write_request(conn: http.client.HTTPConnection, hop: Hop, target: str, netloc: str) -> None:
    conn.putrequest(hop.method, target, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", netloc)
    conn.putheader("User-Agent", USER_AGENT)
    for k, v in hop.headers.items():
        conn.putheader(k, v)
    body = hop.body
    if body is None:
        if hop.method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", "0")
        conn.endheaders()
        return
    if isinstance(body, bytes):
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return
    chunked = hop.length is None
    conn.putheader(*(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(hop.length))))
    conn.endheaders()
    for chunk in body():
        if not chunk:
            continue
        if chunked:
            conn.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        else:
            conn.send(chunk)
    if chunked:
        conn.send(b"0\r\n\r\n")
