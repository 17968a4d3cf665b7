"""A registry client speaking the OCI distribution API over HTTP/1.1 (``http.client`` + ``ssl``).

One ``RegistryClient`` talks to one registry (all repositories on it) and is safe to share between
threads: connections are pooled per host and reused; authentication (``strata.distribution.auth``) is
answered on the first ``401`` and cached per scope. Every request follows redirects (at most
``MAX_REDIRECTS``, by Go's rules); credentials go only to the registry's own origin (scheme, host and
port) -- a redirect elsewhere loses them, as in Go's client -- and never over plain HTTP unless the
registry itself is plain HTTP or configured insecure. Requests wait and retries on ``429``/``503`` with ``Retry-After``, and retries idempotent
requests once on a stale keep-alive connection. Bodies are streamed both ways: blob downloads are
``BlobReader`` streams that verify size and digest as they are read and resume with ``Range`` after a
dropped connection; uploads read from openers in chunks and never hold a blob in memory.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import IO, BinaryIO
from urllib.parse import quote, urlencode, urljoin, urlsplit

from strata import mediatypes as mt
from strata.digest import Digest, ReaderBase, digest_bytes, hasher
from strata.distribution.auth import Authenticator, repository_scope
from strata.distribution.credentials import Credentials
from strata.distribution.errcodes import lookup
from strata.distribution.hosts import Endpoint, HostsConfig, resolve_endpoints, ssl_context_for
from strata.errors import (
    BlobUnknown,
    Denied,
    DigestMismatch,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
    RegistryErrorDetail,
    TransportError,
    Unauthorized,
)

__all__ = [
    "MANIFEST_ACCEPT",
    "MAX_MANIFEST_SIZE",
    "MAX_REDIRECTS",
    "BlobReader",
    "Body",
    "ManifestResult",
    "RegistryClient",
    "Response",
    "copy_blob_to",
    "registry_error",
]

MAX_MANIFEST_SIZE = 4 << 20
MAX_REDIRECTS = 10
MAX_RETRY_AFTER = 60.0
READ_CHUNK = 1 << 20
USER_AGENT = "strata/0.1.0"
MANIFEST_ACCEPT = ", ".join(
    [mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST, mt.OCI_MANIFEST]
)
_NETWORK_ERRORS = (OSError, http.client.HTTPException, ssl.SSLError)

# A request body: bytes, or a factory giving a fresh iterator of chunks (so it can be re-sent).
Body = bytes | Callable[[], Iterable[bytes]]


def registry_error(status: int, body: bytes, reason: str = "") -> RegistryError:
    """The typed error for a registry's error answer; ``str()`` is what Docker prints."""
    details: list[RegistryErrorDetail] = []
    try:
        obj = json.loads(body)
        for e in obj.get("errors") or []:
            details.append(RegistryErrorDetail(str(e.get("code", "")), str(e.get("message", "")), e.get("detail")))
    except (ValueError, AttributeError, TypeError):
        pass
    if details:
        parts = [f"{d.code.lower().replace('_', ' ')}: {d.message or lookup(d.code).message}" for d in details]
        message = parts[0] if len(parts) == 1 else "errors:\n" + "\n".join(parts) + "\n"
        code = details[0].code
    elif status == 401:
        message, code = "unauthorized: authentication required", "UNAUTHORIZED"
    elif status == 403:
        message, code = "denied: requested access to the resource is denied", "DENIED"
    else:
        message, code = f"received unexpected HTTP status: {status} {reason}".rstrip(), ""
    cls: type[RegistryError] = {
        "UNAUTHORIZED": Unauthorized,
        "DENIED": Denied,
        "MANIFEST_UNKNOWN": ManifestUnknown,
        "BLOB_UNKNOWN": BlobUnknown,
        "NAME_UNKNOWN": NameUnknown,
    }.get(code, RegistryError)
    if status == 401:
        cls = Unauthorized
    return cls(message, status=status, errors=details)


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
            raise _Cancelled("cancelled")
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


class _Cancelled(OSError):
    """The client was cancelled (Ctrl-C): a network error no retry or resume may hide."""


class Response:
    """A response whose body has not been read yet; ``close()`` returns the connection to the pool."""

    def __init__(
        self,
        url: str,
        resp: http.client.HTTPResponse,
        release: Callable[[bool], None],
    ) -> None:
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


@dataclass(frozen=True)
class ManifestResult:
    raw: bytes
    media_type: str
    digest: Digest


_REDIRECTS = (301, 302, 303, 307, 308)
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "cookie2"})


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``: two URLs share credentials only when all three are equal."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


@dataclass(frozen=True)
class _Hop:
    """One request of a redirect chain."""

    method: str
    url: str
    headers: dict[str, str]
    body: Body | None
    length: int | None
    secret_body: bool = False  # the body carries credentials (an OAuth2 form with a refresh token)

    def has_credentials(self) -> bool:
        return self.secret_body or any(k.lower() in _CREDENTIAL_HEADERS for k in self.headers)

    def redirected(self, status: int, location: str) -> _Hop:
        """The next request after a ``status`` redirect to ``location``, by Go's rules: 301/302/303 turn
        a request other than GET/HEAD into a bodiless GET, 307/308 resend it as it was; a new origin gets
        no credential headers, and a body with credentials is never sent there (an error instead)."""
        url = urljoin(self.url, location)
        method, body, length, secret = self.method, self.body, self.length, self.secret_body
        if status in (301, 302, 303) and method not in ("GET", "HEAD"):
            method, body, length, secret = "GET", None, None, False
        headers = dict(self.headers)
        if _origin(url) != _origin(self.url):
            headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
            if secret:
                host = urlsplit(url).netloc
                raise TransportError(
                    f'{method.capitalize()} "{url.split("?")[0]}": refusing to send credentials to {host}'
                    f" on a redirect from {urlsplit(self.url).netloc}"
                )
        if body is None:
            headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        return _Hop(method, url, headers, body, length, secret)


def _retry_after(value: str) -> float:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return 1.0


class RegistryClient:
    """HTTP client for one registry. ``registry`` is a reference's domain (``docker.io``, ``localhost:5000``)."""

    def __init__(
        self,
        registry: str,
        credentials: Credentials | None = None,
        *,
        config: HostsConfig | None = None,
        for_push: bool = False,
        timeout: float = 60.0,
        max_attempts: int = 5,
    ) -> None:
        self.registry = registry
        self.config = config or HostsConfig.load()
        self.credentials = credentials or Credentials()
        self._candidates = resolve_endpoints(registry, self.config, for_push=for_push)
        self._endpoint: Endpoint | None = None
        self._index = 0
        self._unreachable = ""  # why the last probe found no endpoint, for every later request
        self._endpoint_lock = threading.Lock()
        self._pool = _Pool(timeout)
        self.auth = Authenticator(self.credentials, self._token_request)
        self.max_attempts = max_attempts
        self._push_repos: set[str] = set()
        self._extra_scopes: dict[str, set[str]] = {}
        self._ctx_cache: dict[str, ssl.SSLContext] = {}

    # ----------------------------------------------------------------- plumbing

    def close(self) -> None:
        self._pool.close()

    def cancel(self) -> None:
        """Abort every transfer of this client now (for Ctrl-C): reads and requests fail at once."""
        self._pool.cancel()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def want_push(self, repo: str, *also_pull: str) -> None:
        """Ask for push rights on ``repo`` (and pull on mount sources) in every token for it."""
        self._push_repos.add(repo)
        self._extra_scopes.setdefault(repo, set()).update(repository_scope(r, "pull") for r in also_pull)

    def scopes(self, repo: str) -> list[str]:
        if repo in self._push_repos:
            return [repository_scope(repo, "pull", "push"), *sorted(self._extra_scopes.get(repo, ()))]
        return [repository_scope(repo, "pull")]

    @property
    def endpoint(self) -> Endpoint:
        with self._endpoint_lock:
            if self._endpoint is None:
                self._endpoint = self._probe()
            return self._endpoint

    def _probe(self) -> Endpoint:
        """The first endpoint (from the current one on) answering ``GET /v2/`` with any HTTP status.

        A certificate that does not verify is final for the registry itself (no quiet fall back to
        plain HTTP); a mirror failing in any way is passed over."""
        last: Exception | None = None
        last_url = ""
        while self._index < len(self._candidates):
            ep = self._candidates[self._index]
            url = last_url = f"{ep.base_url}/v2/"
            try:
                resp = self._send_once(ep, "GET", url, {}, None, None)
            except ssl.SSLCertVerificationError as e:
                if ep.verify and not ep.mirror:
                    raise TransportError(f'Get "{url}": {_describe(e)}') from e
                last = e
            except ssl.SSLError as e:
                if "ALERT" in str(e.reason or "") and not ep.mirror:
                    # the server speaks TLS and refused us (e.g. no client certificate): no plain HTTP
                    raise TransportError(f'Get "{url}": {_describe(e)}') from e
                last = e
            except _NETWORK_ERRORS as e:
                last = e
            else:
                resp.read_limited(64 << 10)
                resp.close()
                return ep
            self._index += 1
        if last is None and self._unreachable:  # probed before: every endpoint already failed
            raise TransportError(self._unreachable)
        self._unreachable = f'Get "{last_url}": {_describe(last, last_url)}'
        raise TransportError(self._unreachable)

    def fail_over(self, failed: Endpoint) -> bool:
        """Pass over ``failed`` (a mirror whose fetch failed) for the next endpoint; False when there is none.

        Only mirrors are passed over: the registry itself is the last word."""
        with self._endpoint_lock:
            if self._endpoint is not failed:
                return self._endpoint is not None or self._index < len(self._candidates)
            if not failed.mirror or self._index + 1 >= len(self._candidates):
                return False
            self._index += 1
            self._endpoint = None
            self.auth = Authenticator(self.credentials, self._token_request)
            return True

    def _ctx_for(self, scheme: str, netloc: str, ep: Endpoint) -> ssl.SSLContext | None:
        if scheme != "https":
            return None
        if netloc == ep.netloc and ep.ssl_context is not None:
            return ep.ssl_context
        if netloc not in self._ctx_cache:
            self._ctx_cache[netloc] = ssl_context_for(netloc, self.config)
        return self._ctx_cache[netloc]

    def _send_once(
        self,
        ep: Endpoint,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Body | None,
        length: int | None,
    ) -> Response:
        parts = urlsplit(url)
        scheme, netloc = parts.scheme, parts.netloc
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        ctx = self._ctx_for(scheme, netloc, ep)
        for attempt in (0, 1):
            conn, reused = self._pool.get(scheme, netloc, ctx)
            try:
                self._write_request(conn, method, target, netloc, headers, body, length)
                resp = conn.getresponse()
            except _NETWORK_ERRORS:
                self._pool.drop(conn)
                if self._pool.cancelled.is_set():
                    raise _Cancelled("cancelled") from None
                if reused and attempt == 0 and (body is None or isinstance(body, bytes) or callable(body)):
                    continue
                raise

            def release(reusable: bool, conn: http.client.HTTPConnection = conn) -> None:
                if reusable:
                    self._pool.put(scheme, netloc, ctx, conn)
                else:
                    self._pool.drop(conn)

            return Response(url, resp, release)
        raise AssertionError("unreachable")

    @staticmethod
    def _write_request(
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        netloc: str,
        headers: dict[str, str],
        body: Body | None,
        length: int | None,
    ) -> None:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", netloc)
        conn.putheader("User-Agent", USER_AGENT)
        for k, v in headers.items():
            conn.putheader(k, v)
        if body is None:
            if method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", "0")
            conn.endheaders()
            return
        if isinstance(body, bytes):
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            return
        chunked = length is None
        conn.putheader(*(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(length))))
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

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: list[str] | None = None,
        headers: dict[str, str] | None = None,
        body: Body | None = None,
        length: int | None = None,
        follow: bool = True,
    ) -> Response:
        """Send a request (path relative to the endpoint, or an absolute URL) and return the final answer.

        Handles auth challenges, redirects, ``Retry-After`` and stale connections; error statuses are
        returned, not raised (see ``check``). On a mirror, a network error, a 5xx or a 404 for a ``GET``
        or ``HEAD`` moves on to the next mirror (then the registry itself) and asks there."""
        while True:
            ep = self.endpoint
            may_fail_over = ep.mirror and "://" not in path
            try:
                resp = self._request_on(ep, method, path, scopes, headers, body, length, follow)
            except TransportError:
                if may_fail_over and self.fail_over(ep):
                    continue
                raise
            failed = resp.status >= 500 or resp.status == 404
            if may_fail_over and failed and method in ("GET", "HEAD") and self.fail_over(ep):
                resp.close()
                continue
            resp.endpoint = ep
            return resp

    def _request_on(
        self,
        ep: Endpoint,
        method: str,
        path: str,
        scopes: list[str] | None,
        headers: dict[str, str] | None,
        body: Body | None,
        length: int | None,
        follow: bool,
    ) -> Response:
        url = path if "://" in path else f"{ep.base_url}{path}"
        scopes = scopes or []
        home = _origin(ep.base_url)
        hop = _Hop(method, url, dict(headers or {}), body, length)
        authed_retry = False
        throttled = 0
        redirects = 0
        while True:
            hdrs = dict(hop.headers)
            own = _origin(hop.url) == home  # credentials go to the registry's own origin only
            if own and "Authorization" not in hdrs:
                auth = self.auth.header(scopes)
                if auth:
                    hdrs["Authorization"] = auth
            try:
                resp = self._send_once(ep, hop.method, hop.url, hdrs, hop.body, hop.length)
            except _NETWORK_ERRORS as e:
                raise TransportError(f'{hop.method.capitalize()} "{hop.url}": {_describe(e, hop.url)}') from e
            if resp.status == 401 and own and not authed_retry:
                challenge = resp.headers.get_all("WWW-Authenticate") or []
                err_body = resp.read_limited(64 << 10)
                resp.close()
                authed_retry = True
                if self.auth.answer(list(challenge), scopes):
                    continue
                raise registry_error(401, err_body, resp.reason)
            if resp.status in (429, 503) and throttled < self.max_attempts and resp.header("Retry-After"):
                delay = _retry_after(resp.header("Retry-After"))
                resp.read_limited(64 << 10)
                resp.close()
                throttled += 1
                time.sleep(delay)
                continue
            if follow and resp.status in _REDIRECTS and resp.header("Location"):
                resp.read_limited(64 << 10)
                resp.close()
                redirects += 1
                hop = hop.redirected(resp.status, resp.header("Location"))
                if redirects > MAX_REDIRECTS:
                    raise TransportError(f'{hop.method.capitalize()} "{hop.url}": stopped after {MAX_REDIRECTS} redirects')
                continue
            return resp

    def check(self, resp: Response, *ok: int) -> Response:
        """Raise the registry's error unless ``resp.status`` is one of ``ok``."""
        if resp.status in ok:
            return resp
        body = resp.read_limited(1 << 20)
        resp.close()
        raise registry_error(resp.status, body, resp.reason)

    def _token_request(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        """A request to the token realm: credentials never over plain HTTP (unless the registry itself is
        plain HTTP or configured insecure), never to another origin on a redirect."""
        ep = self.endpoint
        hop = _Hop(method, url, dict(headers), body, None, secret_body=body is not None)
        plain_ok = ep.scheme == "http" or self.config.is_insecure(ep.netloc)
        redirects = 0
        while True:
            if urlsplit(hop.url).scheme != "https" and hop.has_credentials() and not plain_ok:
                raise TransportError(
                    f'{hop.method.capitalize()} "{hop.url.split("?")[0]}": refusing to send credentials over plain HTTP'
                    f" (the registry {ep.netloc} is served over HTTPS)"
                )
            try:
                resp = self._send_once(ep, hop.method, hop.url, hop.headers, hop.body, None)
            except _NETWORK_ERRORS as e:
                raise TransportError(f'{hop.method.capitalize()} "{hop.url}": {_describe(e, hop.url)}') from e
            if resp.status in _REDIRECTS and resp.header("Location") and redirects < MAX_REDIRECTS:
                resp.read_limited(64 << 10)
                resp.close()
                redirects += 1
                hop = hop.redirected(resp.status, resp.header("Location"))
                continue
            data = resp.read_limited(1 << 20)
            resp.close()
            return resp.status, data

    # ----------------------------------------------------------------- base

    def ping(self) -> None:
        """``GET /v2/`` with the current credentials; raises ``Unauthorized`` if they are refused."""
        resp = self.request("GET", "/v2/", scopes=[])
        self.check(resp, 200)
        resp.read_limited(64 << 10)
        resp.close()

    # ----------------------------------------------------------------- manifests

    def get_manifest(self, repo: str, reference: str, accept: str = MANIFEST_ACCEPT) -> ManifestResult:
        """Fetch a manifest or index; verifies its digest when asked by digest or told one."""
        resp = self.request(
            "GET", f"/v2/{repo}/manifests/{quote(reference)}", scopes=self.scopes(repo), headers={"Accept": accept}
        )
        self.check(resp, 200)
        declared = resp.header("Content-Length")
        if declared.isdigit() and int(declared) > MAX_MANIFEST_SIZE:
            resp.close()
            raise TransportError(f"manifest too big: {declared} bytes (limit {MAX_MANIFEST_SIZE})")
        try:
            raw = resp.read_limited(MAX_MANIFEST_SIZE)
        except _NETWORK_ERRORS as e:
            resp.close()
            raise TransportError(f"reading manifest {reference} in {self.registry}/{repo}: {_describe(e)}") from e
        if len(raw) > MAX_MANIFEST_SIZE:
            resp.close()
            raise TransportError(f"manifest too big: more than {MAX_MANIFEST_SIZE} bytes")
        media_type = resp.header("Content-Type").split(";")[0].strip()
        got = digest_bytes(raw)
        expected: Digest | None = None
        if Digest.is_valid(reference):
            expected = Digest.parse(reference)
        elif Digest.is_valid(resp.header("Docker-Content-Digest")):
            expected = Digest.parse(resp.header("Docker-Content-Digest"))
        if expected is not None:
            if expected.algorithm != "sha256":
                got = digest_bytes(raw, expected.algorithm)
            if got != expected:
                raise DigestMismatch(f"manifest verification failed for digest {expected}")
        return ManifestResult(raw, media_type, got)

    def _head(self, path: str, scopes: list[str], headers: dict[str, str] | None = None) -> Response | None:
        """HEAD ``path``: the (closed) 200 response, None for a 404, else the status as a RegistryError."""
        resp = self.request("HEAD", path, scopes=scopes, headers=headers)
        resp.read_limited(0)
        resp.close()
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise registry_error(resp.status, b"", resp.reason)
        return resp

    def head_manifest(self, repo: str, reference: str) -> tuple[Digest, int, str] | None:
        resp = self._head(
            f"/v2/{repo}/manifests/{quote(reference)}", self.scopes(repo), {"Accept": MANIFEST_ACCEPT}
        )
        if resp is None:
            return None
        dg = resp.header("Docker-Content-Digest")
        size = resp.header("Content-Length")
        return (
            Digest.parse(dg) if Digest.is_valid(dg) else Digest("sha256", ""),
            int(size) if size.isdigit() else 0,
            resp.header("Content-Type"),
        )

    def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> Digest:
        resp = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{quote(reference)}",
            scopes=self.scopes(repo),
            headers={"Content-Type": media_type},
            body=raw,
        )
        self.check(resp, 200, 201, 202)
        resp.read_limited(64 << 10)
        resp.close()
        dg = resp.header("Docker-Content-Digest")
        return Digest.parse(dg) if Digest.is_valid(dg) else digest_bytes(raw)

    def delete_manifest(self, repo: str, digest: Digest) -> None:
        resp = self.request("DELETE", f"/v2/{repo}/manifests/{digest}", scopes=[repository_scope(repo, "delete")])
        self.check(resp, 200, 202)
        resp.read_limited(64 << 10)
        resp.close()

    # ----------------------------------------------------------------- blobs

    def head_blob(self, repo: str, digest: Digest) -> int | None:
        """The blob's size if ``repo`` has it, else None."""
        resp = self._head(f"/v2/{repo}/blobs/{digest}", self.scopes(repo))
        if resp is None:
            return None
        size = resp.header("Content-Length")
        return int(size) if size.isdigit() else 0

    def get_blob_response(self, repo: str, digest: Digest, offset: int = 0) -> Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scopes=self.scopes(repo), headers=headers)
        return self.check(resp, 200, 206)

    def open_blob(
        self,
        repo: str,
        digest: Digest,
        size: int | None = None,
        on_read: Callable[[int], None] | None = None,
    ) -> BlobReader:
        """A verifying, resuming stream of a blob."""
        return BlobReader(self, repo, digest, size, on_read)

    def get_small_blob(self, repo: str, digest: Digest, limit: int = MAX_MANIFEST_SIZE * 4) -> bytes:
        """A config-sized blob, verified, in memory."""
        with self.open_blob(repo, digest) as r:
            data = r.read(limit + 1)
            if len(data) > limit:
                raise TransportError(f"blob {digest} too big: more than {limit} bytes")
            r.read()
        return data

    def mount_blob(self, repo: str, digest: Digest, from_repo: str) -> str | None:
        """Try a cross-repository mount. True-ish: None when mounted, else the upload URL opened instead."""
        q = urlencode({"mount": str(digest), "from": from_repo})
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?{q}", scopes=self.scopes(repo))
        self.check(resp, 201, 202)
        resp.read_limited(64 << 10)
        resp.close()
        if resp.status == 201:
            return None
        return urljoin(resp.url, resp.header("Location"))

    def start_upload(self, repo: str) -> str:
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scopes=self.scopes(repo))
        self.check(resp, 202)
        resp.read_limited(64 << 10)
        resp.close()
        loc = resp.header("Location")
        if not loc:
            raise TransportError("registry did not return an upload location")
        return urljoin(resp.url, loc)

    def _finish_url(self, location: str, digest: Digest) -> str:
        sep = "&" if "?" in location else "?"
        return f"{location}{sep}digest={quote(str(digest))}"

    def upload_blob(
        self,
        repo: str,
        digest: Digest,
        size: int,
        chunks: Callable[[], Iterable[bytes]],
        *,
        location: str | None = None,
        monolithic_limit: int = 1 << 20,
        chunk_size: int = 0,
    ) -> None:
        """Upload a blob of known digest and size. ``chunks()`` yields its bytes (callable again to restart).

        Up to ``monolithic_limit`` bytes go in the final ``PUT``; larger blobs are sent with ``PATCH``
        (one request, or ``chunk_size`` pieces with ``Content-Range``) and closed with an empty ``PUT``."""
        loc = location or self.start_upload(repo)
        scopes = self.scopes(repo)
        if size <= monolithic_limit:
            resp = self.request(
                "PUT",
                self._finish_url(loc, digest),
                scopes=scopes,
                headers={"Content-Type": "application/octet-stream"},
                body=chunks,
                length=size,
            )
        else:
            loc = self._patch_all(loc, scopes, chunks, size, chunk_size)
            resp = self.request("PUT", self._finish_url(loc, digest), scopes=scopes)
        self.check(resp, 201, 204)
        resp.read_limited(64 << 10)
        resp.close()

    def _patch_all(
        self, loc: str, scopes: list[str], chunks: Callable[[], Iterable[bytes]], size: int | None, chunk_size: int
    ) -> str:
        if not chunk_size or size is None:
            return self._patch(loc, scopes, chunks, 0, size)
        offset = 0
        it = iter(_rechunk(chunks(), chunk_size))
        while True:
            piece = next(it, None)
            if piece is None:
                return loc
            loc = self._patch(loc, scopes, _constant(piece), offset, len(piece))
            offset += len(piece)

    def _patch(
        self, loc: str, scopes: list[str], chunks: Callable[[], Iterable[bytes]], offset: int, length: int | None
    ) -> str:
        headers = {"Content-Type": "application/octet-stream"}
        if length is not None and length > 0:
            headers["Content-Range"] = f"{offset}-{offset + length - 1}"
        resp = self.request("PATCH", loc, scopes=scopes, headers=headers, body=chunks, length=length)
        self.check(resp, 202, 204)
        resp.read_limited(64 << 10)
        resp.close()
        new = resp.header("Location")
        return urljoin(resp.url, new) if new else loc

    def upload_stream(self, repo: str, chunks: Iterable[bytes], *, location: str | None = None) -> tuple[Digest, int]:
        """Upload bytes whose digest is not known in advance (computed while streaming)."""
        h = hasher()
        total = 0

        def counted() -> Iterator[bytes]:
            nonlocal total
            for c in chunks:
                h.update(c)
                total += len(c)
                yield c

        used = False

        def once() -> Iterable[bytes]:
            nonlocal used
            if used:
                raise TransportError("upload stream cannot be restarted")
            used = True
            return counted()

        loc = location or self.start_upload(repo)
        loc = self._patch(loc, self.scopes(repo), once, 0, None)
        digest = Digest("sha256", h.hexdigest())
        resp = self.request("PUT", self._finish_url(loc, digest), scopes=self.scopes(repo))
        self.check(resp, 201, 204)
        resp.read_limited(64 << 10)
        resp.close()
        return digest, total

    # ----------------------------------------------------------------- listings

    def _paged(self, path: str, key: str, scopes: list[str]) -> list[str]:
        out: list[str] = []
        url = path
        for _ in range(10000):
            resp = self.request("GET", url, scopes=scopes)
            self.check(resp, 200)
            data = resp.read_limited(MAX_MANIFEST_SIZE)
            resp.close()
            try:
                obj = json.loads(data)
            except ValueError:
                raise TransportError(f"invalid JSON from {url}") from None
            out += [str(x) for x in (obj.get(key) or [])]
            nxt = _next_link(resp.header("Link"))
            if not nxt:
                break
            url = urljoin(resp.url, nxt)
        return out

    def tags(self, repo: str) -> list[str]:
        return self._paged(f"/v2/{repo}/tags/list", "tags", self.scopes(repo))

    def catalog(self) -> list[str]:
        return self._paged("/v2/_catalog", "repositories", ["registry:catalog:*"])


def _constant(piece: bytes) -> Callable[[], Iterable[bytes]]:
    return lambda: [piece]


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup a stream into pieces of ``size`` bytes (the last may be shorter)."""
    buf = bytearray()
    for c in chunks:
        buf += c
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _next_link(header: str) -> str:
    for part in header.split(","):
        if 'rel="next"' in part or "rel=next" in part:
            start, end = part.find("<"), part.find(">")
            if start != -1 and end > start:
                return part[start + 1 : end]
    return ""


def _describe(e: BaseException | None, url: str = "") -> str:
    if e is None:
        return "no endpoint"
    if isinstance(e, socket.gaierror):
        return f"dial tcp: lookup {urlsplit(url).hostname or ''}: no such host".replace("lookup :", "lookup:")
    if isinstance(e, ConnectionRefusedError):
        return f"{_dial(url)}connect: connection refused"
    if isinstance(e, socket.timeout | TimeoutError):
        return f"{_dial(url)}i/o timeout"
    if isinstance(e, ssl.SSLCertVerificationError):
        return _x509_text(e)
    if isinstance(e, ssl.SSLError) and "ALERT_" in str(e.reason or ""):
        # TLSV13_ALERT_CERTIFICATE_REQUIRED -> "remote error: tls: certificate required" (Go's words)
        alert = str(e.reason).split("ALERT_", 1)[1].lower().replace("_", " ")
        return f"remote error: tls: {alert}"
    if isinstance(e, http.client.IncompleteRead):
        return "unexpected EOF"
    return str(e) or type(e).__name__


def _dial(url: str) -> str:
    """Go's ``dial tcp HOST:PORT: `` prefix of a connection error (the port the URL implies)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"dial tcp {host}:{port}: "


# OpenSSL verify codes -> the words Go's crypto/x509 (hence Docker) uses
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21, 27}
_EXPIRED = {9, 10}
_NAME_MISMATCH = {62, 64}  # hostname, IP address


def _x509_text(e: ssl.SSLCertVerificationError) -> str:
    code = e.verify_code
    if code in _UNKNOWN_AUTHORITY:
        return "x509: certificate signed by unknown authority"
    if code in _EXPIRED:
        return "x509: certificate has expired or is not yet valid"
    if code in _NAME_MISMATCH:
        # "Hostname mismatch, certificate is not valid for 'x'." -> "certificate is not valid for x"
        text = e.verify_message.split(", ", 1)[-1].rstrip(".").replace("'", "")
        return f"x509: {text}"
    return f"x509: {e.verify_message or e.reason or e}"


class BlobReader(ReaderBase):
    """Reads one blob, hashing as it goes; resumes with ``Range`` after a dropped connection.

    At end of stream it checks the size and digest and raises ``DigestMismatch`` (nothing is returned
    as EOF from a bad blob), so a consumer writing to a temp file never commits bad content."""

    max_resumes = 5

    def __init__(
        self,
        client: RegistryClient,
        repo: str,
        digest: Digest,
        size: int | None,
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        self.client, self.repo, self.digest, self.expected_size = client, repo, digest, size
        self._hash = hasher(digest.algorithm)
        self.offset = 0
        self._resp: Response | None = None
        self._resumes = 0
        self._done = False
        self._on_read = on_read
        self._endpoint: Endpoint | None = None

    def _open(self) -> Response:
        resp = self.client.get_blob_response(self.repo, self.digest, self.offset)
        self._endpoint = resp.endpoint
        if self.offset and resp.status == 200:
            # server ignored Range: skip what we already have
            to_skip = self.offset
            while to_skip:
                chunk = resp.read(min(to_skip, READ_CHUNK))
                if not chunk:
                    break
                to_skip -= len(chunk)
        elif self.offset and resp.status == 206:
            cr = resp.header("Content-Range")
            if not cr.startswith(f"bytes {self.offset}-"):
                resp.close()
                raise TransportError(f"blob {self.digest}: server resumed at the wrong offset ({cr})")
        return resp

    def _drop(self, err: BaseException) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None
        self._resumes += 1
        if self._resumes > self.max_resumes:
            ep, self._endpoint = self._endpoint, None
            if ep is not None and self.client.fail_over(ep):
                self._resumes = 0  # resume (by Range) from the next mirror
                return
            raise TransportError(f"downloading blob {self.digest}: {_describe(err)}") from err
        time.sleep(min(0.2 * self._resumes, 2.0))

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            parts = []
            while chunk := self.read(READ_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        while not self._done:
            try:
                if self._resp is None:
                    self._resp = self._open()
                data = self._resp.read(n)
            except (TransportError, RegistryError):
                raise
            except _NETWORK_ERRORS as e:
                if self.client._pool.cancelled.is_set():
                    self.close()
                    raise TransportError(f"downloading blob {self.digest}: cancelled") from e
                self._drop(e)
                continue
            if data:
                if self.expected_size is not None and self.offset + len(data) > self.expected_size:
                    self.close()
                    raise DigestMismatch(
                        f"filesystem layer verification failed for digest {self.digest}: more than {self.expected_size} bytes"
                    )
                self._hash.update(data)
                self.offset += len(data)
                if self._on_read:
                    self._on_read(len(data))
                return data
            # EOF from the server
            if self.expected_size is not None and self.offset < self.expected_size:
                self._drop(http.client.IncompleteRead(b"", self.expected_size - self.offset))
                continue
            self._finish()
        return b""

    def _finish(self) -> None:
        self._done = True
        if self._resp is not None:
            self._resp.close()
            self._resp = None
        if Digest(self.digest.algorithm, self._hash.hexdigest()) != self.digest:
            raise DigestMismatch(f"filesystem layer verification failed for digest {self.digest}")

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def copy_blob_to(reader: BlobReader, out: IO[bytes] | BinaryIO) -> int:
    total = 0
    while chunk := reader.read(READ_CHUNK):
        out.write(chunk)
        total += len(chunk)
    return total

