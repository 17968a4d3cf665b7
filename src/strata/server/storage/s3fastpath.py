"""Small reads of one object (GET of a link, HEAD of a blob) without botocore's per-call machinery.

A botocore call costs about 1.5 ms of CPU (event hooks, endpoint rules, parameter checks, signing,
response parsing) for a few dozen bytes; the registry's hot paths make two or three per request.
Here botocore still signs -- a presigned URL per (method, key), kept for ``REUSE`` seconds of its
``EXPIRY`` -- and the request itself goes over a urllib3 pool set up as botocore sets up its own
(certificate checks unless ``skipverify``, botocore's CA bundle, its timeouts): about 0.5 ms.

Only the plain answers are taken from here: 200, and 404 for a missing key. Anything else (403 of
an expired signature or rotated credentials, 301 to another region, 5xx, a broken connection) raises
:class:`Unanswered` and the caller asks botocore, with its retries, redirects and error words. An
endpoint reached through a proxy (botocore reads the proxy environment) is never read from here.
The URLs never leave the process.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import urllib3
from botocore.httpsession import get_cert_path
from botocore.utils import get_environ_proxies

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["EXPIRY", "REUSE", "FastReads", "Unanswered"]

EXPIRY = 15 * 60  # seconds a presigned URL is valid
REUSE = 5 * 60  # seconds one URL is used again (it stays valid for 10 more)
_MAX_URLS = 20_000  # per method; then the cache starts over (bounded memory)
_NO_SUCH_KEY = b"<Code>NoSuchKey</Code>"


class Unanswered(Exception):
    """The fast path cannot answer this one: ask botocore."""


class FastReads:
    """GET/HEAD of single objects through reused presigned URLs (thread-safe)."""

    def __init__(self, client: S3Client, bucket: str, *, verify: bool, pool_size: int,
                 connect_timeout: float, read_timeout: float) -> None:  # fmt: skip
        self._client = client
        self._bucket = bucket
        self._urls: dict[str, dict[str, tuple[float, str]]] = {"GET": {}, "HEAD": {}}
        self._direct: dict[str, bool] = {}  # scheme://host -> no proxy applies
        self._lock = threading.Lock()
        tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": get_cert_path(True)} if verify else {"cert_reqs": "CERT_NONE"}
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout), **tls,
        )  # fmt: skip

    def _url(self, method: str, key: str) -> str:
        now = time.monotonic()
        urls = self._urls[method]
        hit = urls.get(key)
        if hit is not None and now - hit[0] < REUSE:
            return hit[1]
        op = "get_object" if method == "GET" else "head_object"
        try:
            url = self._client.generate_presigned_url(op, Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=EXPIRY)
        except Exception as e:  # botocore's own call will say what is wrong
            raise Unanswered(str(e)) from e
        if not self._is_direct(url):
            raise Unanswered("the endpoint is reached through a proxy")
        with self._lock:
            if len(urls) >= _MAX_URLS:
                urls.clear()
            urls[key] = (now, url)
        return url

    def _is_direct(self, url: str) -> bool:
        origin = url.split("/", 3)[:3]
        base = "/".join(origin)
        direct = self._direct.get(base)
        if direct is None:
            direct = self._direct[base] = not get_environ_proxies(base + "/")
        return direct

    def _forget(self, method: str, key: str) -> None:
        with self._lock:
            self._urls[method].pop(key, None)

    def _send(self, method: str, key: str) -> urllib3.BaseHTTPResponse:
        try:
            resp = self._pool.request(method, self._url(method, key), redirect=False)
        except urllib3.exceptions.HTTPError as e:
            raise Unanswered(str(e)) from e
        if resp.status not in (200, 404):
            self._forget(method, key)
            raise Unanswered(f"HTTP {resp.status}")
        return resp

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        resp = self._send("GET", key)
        if resp.status == 404:
            if _NO_SUCH_KEY not in resp.data:
                raise Unanswered("404 without NoSuchKey")  # no bucket, say: botocore words it
            return None
        return resp.data

    def head(self, key: str) -> tuple[int, str | None, str, str] | None:
        """(size, x-amz-meta-mtime, Last-Modified, ETag), or None when there is no such key."""
        resp = self._send("HEAD", key)
        if resp.status == 404:
            return None
        h = resp.headers
        try:
            return int(h["Content-Length"]), h.get("x-amz-meta-mtime"), h["Last-Modified"], h["ETag"]
        except (KeyError, ValueError) as e:
            raise Unanswered(f"incomplete HEAD answer: {e}") from e
