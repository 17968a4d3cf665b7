"""Small reads of one object (GET of a link, HEAD of a blob) without botocore's per-call machinery.

A botocore call costs about 1.5 ms of CPU (event hooks, endpoint rules, parameter checks, signing,
response parsing) for a few dozen bytes; the registry's hot paths make two or three per request.
Here botocore still signs -- a presigned URL per (method, key), kept for ``REUSE`` seconds of its
``EXPIRY`` -- and the request itself goes over a keep-alive connection per thread set up as botocore
sets up its own (certificate checks unless ``skipverify``, botocore's CA bundle, its timeouts):
about 0.4 ms.

Only the plain answers are taken from here: 200, and 404 for a missing key. Anything else (403 of
an expired signature or rotated credentials, 301 to another region, 5xx, a broken connection) raises
:class:`Unanswered` and the caller asks botocore, with its retries, redirects and error words. An
endpoint reached through a proxy (botocore reads the proxy environment) is never read from here.
The URLs never leave the process.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import time
import weakref
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from botocore.httpsession import get_cert_path
from botocore.utils import get_environ_proxies

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["EXPIRY", "REUSE", "FastReads", "Unanswered"]

EXPIRY = 15 * 60  # seconds a presigned URL is valid
REUSE = 5 * 60  # seconds one URL is used again (it stays valid for 10 more)
_MAX_URLS = 20_000  # per method; then the cache starts over (bounded memory)
_NO_SUCH_KEY = b"<Code>NoSuchKey</Code>"
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
_BROKEN = (http.client.HTTPException, OSError)  # also timeouts, refused connections, TLS failures


class Unanswered(Exception):
    """The fast path cannot answer this one: ask botocore."""


class _Target:
    """Where one presigned request goes: scheme, host, port and the path with its query."""

    __slots__ = ("origin", "path", "signed_at")

    def __init__(self, url: str, signed_at: float) -> None:
        u = urlsplit(url)
        self.origin = (u.scheme, u.hostname or "", u.port or (443 if u.scheme == "https" else 80))
        self.path = f"{u.path}?{u.query}" if u.query else u.path
        self.signed_at = signed_at


class FastReads:
    """GET/HEAD of single objects through reused presigned URLs (thread-safe: each thread keeps its
    own keep-alive connection per origin)."""

    def __init__(self, client: S3Client, bucket: str, *, verify: bool, connect_timeout: float,
                 read_timeout: float) -> None:  # fmt: skip
        self._client = client
        self._bucket = bucket
        self._targets: dict[str, dict[str, _Target]] = {"GET": {}, "HEAD": {}}
        self._direct: dict[str, bool] = {}  # scheme://host:port -> no proxy applies
        self._lock = threading.Lock()
        self._local = threading.local()
        self._open: set[http.client.HTTPConnection] = set()  # every thread's, closed with this object
        weakref.finalize(self, _close_all, self._open)
        self._timeouts = (connect_timeout, read_timeout)
        self._tls = ssl.create_default_context(cafile=get_cert_path(True)) if verify else _unverified()

    def _target(self, method: str, key: str) -> _Target:
        now = time.monotonic()
        targets = self._targets[method]
        hit = targets.get(key)
        if hit is not None and now - hit.signed_at < REUSE:
            return hit
        op = "get_object" if method == "GET" else "head_object"
        try:
            url = self._client.generate_presigned_url(op, Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=EXPIRY)
        except Exception as e:  # botocore's own call will say what is wrong
            raise Unanswered(str(e)) from e
        target = _Target(url, now)
        if target.origin[0] not in ("http", "https") or not self._is_direct(target):
            raise Unanswered("the endpoint is reached through a proxy")
        with self._lock:
            if len(targets) >= _MAX_URLS:
                targets.clear()
            targets[key] = target
        return target

    def _is_direct(self, target: _Target) -> bool:
        scheme, host, port = target.origin
        base = f"{scheme}://{host}:{port}"
        direct = self._direct.get(base)
        if direct is None:
            direct = self._direct[base] = not get_environ_proxies(base + "/")
        return direct

    def _forget(self, method: str, key: str) -> None:
        with self._lock:
            self._targets[method].pop(key, None)

    def _connection(self, origin: tuple[str, str, int], fresh: bool) -> http.client.HTTPConnection:
        conns: dict[tuple[str, str, int], http.client.HTTPConnection] | None = getattr(self._local, "conns", None)
        if conns is None or self._local.pid != os.getpid():  # a forked child never shares its parent's sockets
            conns = self._local.conns = {}
            self._local.pid = os.getpid()
        conn = conns.get(origin)
        if conn is not None and not fresh:
            return conn
        if conn is not None:
            self._drop(conn)
        scheme, host, port = origin
        connect, read = self._timeouts
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=connect, context=self._tls)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect)
        with self._lock:
            self._open.add(conn)
        conns[origin] = conn
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(read)
        return conn

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        with self._lock:
            self._open.discard(conn)

    def _send(self, method: str, key: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        target = self._target(method, key)
        try:
            try:
                resp, body = self._exchange(method, target, fresh=False)
            except _STALE:  # a kept connection the server had closed: once more on a new one
                resp, body = self._exchange(method, target, fresh=True)
        except _BROKEN as e:
            self._connection_failed(target.origin)
            raise Unanswered(str(e)) from e
        if resp.status not in (200, 404):
            self._forget(method, key)
            raise Unanswered(f"HTTP {resp.status}")
        return resp.status, resp.headers, body

    def _exchange(self, method: str, target: _Target, fresh: bool) -> tuple[http.client.HTTPResponse, bytes]:
        conn = self._connection(target.origin, fresh)
        conn.request(method, target.path)
        resp = conn.getresponse()
        return resp, resp.read()

    def _connection_failed(self, origin: tuple[str, str, int]) -> None:
        conn = getattr(self._local, "conns", {}).pop(origin, None)
        if conn is not None:
            self._drop(conn)

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        status, _, body = self._send("GET", key)
        if status == 404:
            if _NO_SUCH_KEY not in body:
                raise Unanswered("404 without NoSuchKey")  # no bucket, say: botocore words it
            return None
        return body

    def head(self, key: str) -> tuple[int, str | None, str, str] | None:
        """(size, x-amz-meta-mtime, Last-Modified, ETag), or None when there is no such key."""
        status, h, _ = self._send("HEAD", key)
        if status == 404:
            return None
        try:
            return int(h["Content-Length"]), h.get("x-amz-meta-mtime"), h["Last-Modified"], h["ETag"]
        except (KeyError, TypeError, ValueError) as e:
            raise Unanswered(f"incomplete HEAD answer: {e}") from e


def _close_all(conns: set[http.client.HTTPConnection]) -> None:
    for conn in list(conns):
        conn.close()
    conns.clear()


def _unverified() -> ssl.SSLContext:
    """``skipverify``: TLS without checking the certificate, as botocore's ``verify=False``."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
