"""A session with one registry: which endpoint answers (mirrors first, HTTPS before plain HTTP), who we
are there (``distribution.auth``: challenges, tokens cached per scope), and ``request`` -- one API call
with its auth challenge, ``Retry-After`` waits, redirects and mirror failover.

Credentials go only to the endpoint's own origin (scheme, host and port); a redirect elsewhere loses
them. The token realm gets them only over HTTPS, unless the registry itself is plain HTTP or configured
insecure.
"""

from __future__ import annotations

import ssl
import threading
import time
from typing import Self
from urllib.parse import urlsplit

from strata.distribution.auth import Authenticator, repository_scope
from strata.distribution.client.errors import describe, registry_error
from strata.distribution.client.transport import (
    MAX_REDIRECTS,
    NETWORK_ERRORS,
    REDIRECTS,
    Body,
    Hop,
    Response,
    Transport,
    origin,
)
from strata.distribution.credentials import Credentials
from strata.distribution.hosts import Endpoint, HostsConfig, resolve_endpoints
from strata.errors import TransportError

__all__ = ["Session"]

MAX_RETRY_AFTER = 60.0


def _retry_after(value: str) -> float:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return 1.0


def _failed(hop: Hop, e: BaseException) -> TransportError:
    return TransportError(f'{hop.method.capitalize()} "{hop.url}": {describe(e, hop.url)}')


class Session:
    """One registry (``registry`` is a reference's domain: ``docker.io``, ``localhost:5000``); thread-safe."""

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
        self.transport = Transport(self.config, timeout)
        self._candidates = resolve_endpoints(registry, self.config, for_push=for_push)
        self._endpoint: Endpoint | None = None
        self._index = 0
        self._unreachable = ""  # why the last probe found no endpoint, for every later request
        self._endpoint_lock = threading.Lock()
        self.auth = Authenticator(self.credentials, self._token_request)
        self.max_attempts = max_attempts
        self._push_repos: set[str] = set()
        self._extra_scopes: dict[str, set[str]] = {}

    def close(self) -> None:
        self.transport.close()

    def cancel(self) -> None:
        """Abort every transfer of this client now (for Ctrl-C): reads and requests fail at once."""
        self.transport.cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ scopes

    def want_push(self, repo: str, *also_pull: str) -> None:
        """Ask for push rights on ``repo`` (and pull on mount sources) in every token for it."""
        self._push_repos.add(repo)
        self._extra_scopes.setdefault(repo, set()).update(repository_scope(r, "pull") for r in also_pull)

    def scopes(self, repo: str) -> list[str]:
        if repo in self._push_repos:
            return [repository_scope(repo, "pull", "push"), *sorted(self._extra_scopes.get(repo, ()))]
        return [repository_scope(repo, "pull")]

    # ------------------------------------------------------------------ endpoints

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
                self.transport.send(ep, Hop("GET", url, {})).drain()
                return ep
            except ssl.SSLCertVerificationError as e:
                if ep.verify and not ep.mirror:
                    raise TransportError(f'Get "{url}": {describe(e)}') from e
                last = e
            except ssl.SSLError as e:
                if "ALERT" in str(e.reason or "") and not ep.mirror:
                    # the server speaks TLS and refused us (e.g. no client certificate): no plain HTTP
                    raise TransportError(f'Get "{url}": {describe(e)}') from e
                last = e
            except NETWORK_ERRORS as e:
                last = e
            self._index += 1
        if last is None and self._unreachable:  # probed before: every endpoint already failed
            raise TransportError(self._unreachable)
        self._unreachable = f'Get "{last_url}": {describe(last, last_url)}'
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

    # ------------------------------------------------------------------ requests

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
            url = path if "://" in path else f"{ep.base_url}{path}"
            try:
                resp = self._request_on(ep, Hop(method, url, dict(headers or {}), body, length), scopes or [], follow)
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

    def _request_on(self, ep: Endpoint, hop: Hop, scopes: list[str], follow: bool) -> Response:
        home = origin(ep.base_url)
        authed_retry = False
        throttled = 0
        redirects = 0
        while True:
            own = origin(hop.url) == home  # credentials go to the registry's own origin only
            try:
                resp = self.transport.send(ep, self._authorized(hop, scopes) if own else hop)
            except NETWORK_ERRORS as e:
                raise _failed(hop, e) from e
            if resp.status == 401 and own and not authed_retry:
                challenge = resp.headers.get_all("WWW-Authenticate") or []
                err_body = resp.drain()
                authed_retry = True
                if self.auth.answer(list(challenge), scopes):
                    continue
                raise registry_error(401, err_body, resp.reason)
            if resp.status in (429, 503) and throttled < self.max_attempts and resp.header("Retry-After"):
                resp.drain()
                throttled += 1
                time.sleep(_retry_after(resp.header("Retry-After")))
                continue
            if follow and resp.status in REDIRECTS and resp.header("Location"):
                resp.drain()
                redirects += 1
                hop = hop.redirected(resp.status, resp.header("Location"))
                if redirects > MAX_REDIRECTS:
                    raise TransportError(f'{hop.method.capitalize()} "{hop.url}": stopped after {MAX_REDIRECTS} redirects')
                continue
            return resp

    def _authorized(self, hop: Hop, scopes: list[str]) -> Hop:
        """``hop`` with the session's ``Authorization`` for ``scopes`` (unless it has one already)."""
        if "Authorization" in hop.headers:
            return hop
        auth = self.auth.header(scopes)
        if not auth:
            return hop
        return Hop(hop.method, hop.url, {**hop.headers, "Authorization": auth}, hop.body, hop.length)

    def check(self, resp: Response, *ok: int) -> Response:
        """Raise the registry's error unless ``resp.status`` is one of ``ok``."""
        if resp.status in ok:
            return resp
        raise registry_error(resp.status, resp.drain(1 << 20), resp.reason)

    def head(self, path: str, scopes: list[str], headers: dict[str, str] | None = None) -> Response | None:
        """HEAD ``path``: the (closed) 200 response, None for a 404, else the status as a RegistryError."""
        resp = self.request("HEAD", path, scopes=scopes, headers=headers)
        resp.drain(0)
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise registry_error(resp.status, b"", resp.reason)
        return resp

    def _token_request(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        """A request to the token realm: credentials never over plain HTTP (unless the registry itself is
        plain HTTP or configured insecure), never to another origin on a redirect."""
        ep = self.endpoint
        hop = Hop(method, url, dict(headers), body, None, secret_body=body is not None)
        plain_ok = ep.scheme == "http" or self.config.is_insecure(ep.netloc)
        redirects = 0
        while True:
            if urlsplit(hop.url).scheme != "https" and hop.has_credentials() and not plain_ok:
                raise TransportError(
                    f'{hop.method.capitalize()} "{hop.url.split("?")[0]}": refusing to send credentials over plain HTTP'
                    f" (the registry {ep.netloc} is served over HTTPS)"
                )
            try:
                resp = self.transport.send(ep, hop)
            except NETWORK_ERRORS as e:
                raise _failed(hop, e) from e
            if resp.status in REDIRECTS and resp.header("Location") and redirects < MAX_REDIRECTS:
                resp.drain()
                redirects += 1
                hop = hop.redirected(resp.status, resp.header("Location"))
                continue
            return resp.status, resp.drain(1 << 20)
