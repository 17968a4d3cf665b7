"""Credentials never follow a redirect to another origin, and never go over plain HTTP (issue 11, items 5
and 10). Go's client, hence Docker, drops ``Authorization`` on a redirect to another host; strata compares
the whole origin (scheme, host, port), for every request it redirects: registry API calls, blob
downloads sent on to storage, and token requests (GET with Basic, OAuth2 POST with a refresh token).

Real loopback servers (``TrapServer``) record every request they get, so a leak shows as a request."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from strata.digest import digest_bytes
from strata.distribution.client import RegistryClient
from strata.distribution.client.transport import Hop, origin
from strata.distribution.credentials import Credentials
from strata.distribution.hosts import HostsConfig
from strata.errors import TransportError

from .tlscerts import CA, certs_d
from .trapserver import Reply, Seen, TrapServer

SECRET = "s3cret-Pa55"
TOKEN = "tok-issued"
NO_CERTS = HostsConfig(certs_dirs=())
UNAUTHORIZED = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}'


def _json(obj: object) -> Reply:
    return 200, {"Content-Type": "application/json"}, json.dumps(obj).encode()


def _query(seen: Seen) -> str:
    q = seen.path.partition("?")[2]
    return f"?{q}" if q else ""


def _token_registry(realm: Callable[[Seen], str], hop: tuple[int, str] | None = None) -> Callable[[Seen], Reply]:
    """A registry wanting Bearer tokens from ``realm``; its own ``/token`` redirects to ``hop`` when given."""

    def route(seen: Seen) -> Reply:
        if seen.path.startswith("/token"):
            if hop is not None:
                return hop[0], {"Location": hop[1] + _query(seen)}, b""
            return _json({"token": TOKEN, "expires_in": 300})
        if seen.headers.get("Authorization") == f"Bearer {TOKEN}":
            return _json({})
        challenge = f'Bearer realm="{realm(seen)}",service="trap"'
        return 401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"}, UNAUTHORIZED

    return route


def _own_realm(seen: Seen) -> str:
    return f"http://{seen.headers['Host']}/token"


def _token_server(seen: Seen) -> Reply:
    return _json({"token": TOKEN, "access_token": TOKEN, "expires_in": 300})


def _leaks(server: TrapServer) -> list[Seen]:
    return [s for s in server.seen if s.has_credentials(SECRET)]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_token_get_redirected_to_another_host_loses_the_password(status: int) -> None:
    with TrapServer(_token_server) as other:
        hop = (status, f"http://{other.host}/token")
        with TrapServer(_token_registry(_own_realm, hop)) as reg, RegistryClient(
            reg.host, Credentials("alice", SECRET), config=NO_CERTS
        ) as client:
            client.ping()
            own = [s for s in reg.seen if s.path.startswith("/token")]
    assert own and own[0].headers.get("Authorization", "").startswith("Basic ")  # the registry's realm has it
    assert [s.path.split("?")[0] for s in other.seen] == ["/token"]  # the redirect was followed ...
    assert _leaks(other) == []  # ... without the password


@pytest.mark.parametrize("status", [307, 308])
def test_oauth_post_is_not_resent_to_another_host(status: int) -> None:
    with TrapServer(_token_server) as other:
        hop = (status, f"http://{other.host}/token")
        with TrapServer(_token_registry(_own_realm, hop)) as reg, RegistryClient(
            reg.host, Credentials("alice", identity_token=SECRET), config=NO_CERTS
        ) as client:
            with pytest.raises(TransportError, match=f"refusing to send credentials to {other.host}"):
                client.ping()
            assert any(s.method == "POST" and SECRET.encode() in s.body for s in reg.seen)
    assert other.seen == []


@pytest.mark.parametrize("status", [301, 302, 303])
def test_oauth_post_redirected_by_301_302_303_becomes_a_bare_get(status: int) -> None:
    """Go turns a redirected POST into a GET without its body; the refresh token stays behind."""
    with TrapServer(_token_server) as other:
        hop = (status, f"http://{other.host}/token")
        with TrapServer(_token_registry(_own_realm, hop)) as reg, RegistryClient(
            reg.host, Credentials("alice", identity_token=SECRET), config=NO_CERTS
        ) as client:
            client.ping()
    assert [(s.method, s.body) for s in other.seen] == [("GET", b"")]
    assert _leaks(other) == []


def _blob_registry(data: bytes, target: Callable[[Seen], str]) -> Callable[[Seen], Reply]:
    """Basic auth (alice/SECRET); blob GETs answer 307 to ``target(seen)``, which serves ``/real/`` freely."""
    import base64

    good = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()

    def route(seen: Seen) -> Reply:
        if seen.path.startswith("/real/"):
            return 200, {}, data
        if seen.headers.get("Authorization") != good:
            return 401, {"WWW-Authenticate": 'Basic realm="trap"'}, UNAUTHORIZED
        if "/blobs/" in seen.path:
            return 307, {"Location": target(seen)}, b""
        return _json({})

    return route


def test_blob_redirect_to_storage_on_another_host_loses_the_password() -> None:
    data = os.urandom(50_000)
    dg = digest_bytes(data)
    with TrapServer(lambda s: (200, {}, data)) as storage:
        route = _blob_registry(data, lambda s: f"http://{storage.host}/real/{dg.hex}")
        with TrapServer(route) as reg, RegistryClient(reg.host, Credentials("alice", SECRET), config=NO_CERTS) as c:
            assert c.open_blob("r", dg, len(data)).read() == data
    assert len(storage.seen) == 1 and _leaks(storage) == []


@pytest.fixture
def pki(tmp_path: Path) -> CA:
    return CA(tmp_path / "pki")


def _tls_client(pki: CA, tmp_path: Path, host: str, creds: Credentials) -> RegistryClient:
    config = HostsConfig(certs_dirs=(certs_d(tmp_path / "certs.d", host, ca=pki.ca_path),))
    return RegistryClient(host, creds, config=config)


def test_https_to_http_redirect_on_the_same_host_and_port_drops_authorization(pki: CA, tmp_path: Path) -> None:
    data = os.urandom(50_000)
    dg = digest_bytes(data)
    tls = pki.issue("server", ["127.0.0.1"])
    route = _blob_registry(data, lambda s: f"http://{s.headers['Host']}/real/{dg.hex}")
    with TrapServer(route, tls=tls) as reg:
        with _tls_client(pki, tmp_path, reg.host, Credentials("alice", SECRET)) as c:
            assert c.endpoint.scheme == "https"
            assert c.open_blob("r", dg, len(data)).read() == data
        plain = [s for s in reg.seen if s.scheme == "http"]
        secure = [s for s in reg.seen if s.scheme == "https"]
    assert [s.path for s in plain] == [f"/real/{dg.hex}"]  # the redirect was followed over plain HTTP ...
    assert [s for s in plain if s.has_credentials(SECRET)] == []  # ... without the password
    assert any(s.has_credentials(SECRET) for s in secure)


def test_plain_http_realm_of_an_https_registry_gets_no_password(pki: CA, tmp_path: Path) -> None:
    tls = pki.issue("server", ["127.0.0.1"])
    with TrapServer(_token_registry(_own_realm), tls=tls) as reg:
        with (
            _tls_client(pki, tmp_path, reg.host, Credentials("alice", SECRET)) as c,
            pytest.raises(TransportError, match="refusing to send credentials over plain HTTP"),
        ):
            c.ping()
        with _tls_client(pki, tmp_path, reg.host, Credentials()) as anonymous:
            anonymous.ping()  # no credentials: an anonymous token over HTTP is fine
        plain = [s for s in reg.seen if s.scheme == "http"]
    assert [s.path.split("?")[0] for s in plain] == ["/token"]
    assert [s for s in plain if s.has_credentials(SECRET)] == []


def test_token_redirect_from_https_to_http_on_the_same_host_drops_the_password(pki: CA, tmp_path: Path) -> None:
    tls = pki.issue("server", ["127.0.0.1"])

    def realm(seen: Seen) -> str:
        return f"https://{seen.headers['Host']}/token"

    def route(seen: Seen) -> Reply:
        if seen.path.startswith("/token") and seen.scheme == "http":
            return _token_server(seen)
        hop = (307, f"http://{seen.headers['Host']}/token") if seen.scheme == "https" else None
        return _token_registry(realm, hop)(seen)

    with TrapServer(route, tls=tls) as reg:
        with _tls_client(pki, tmp_path, reg.host, Credentials("alice", SECRET)) as c:
            c.ping()
        plain = [s for s in reg.seen if s.scheme == "http"]
    assert [s.path.split("?")[0] for s in plain] == ["/token"]
    assert [s for s in plain if s.has_credentials(SECRET)] == []


@pytest.mark.parametrize(
    ("start", "target", "same"),
    [
        ("https://r.example/v2/", "https://r.example:443/x", True),  # the default port is the same port
        ("http://r.example/v2/", "http://R.EXAMPLE:80/x", True),
        ("https://r.example/v2/", "http://r.example/x", False),  # scheme
        ("https://r.example:5000/v2/", "http://r.example:5000/x", False),  # scheme, same port
        ("https://r.example/v2/", "https://r.example:8443/x", False),  # port
        ("https://r.example/v2/", "https://cdn.r.example/x", False),  # host (a subdomain too)
    ],
)
def test_origin_is_scheme_host_and_port(start: str, target: str, same: bool) -> None:
    assert (origin(start) == origin(target)) is same
    hop = Hop("GET", start, {"Authorization": "Basic x", "Cookie": "c=1", "Accept": "a"})
    headers = hop.redirected(307, target).headers
    assert headers == (hop.headers if same else {"Accept": "a"})


def test_redirect_methods_follow_gos_rules() -> None:
    put = Hop("PUT", "https://r/v2/x", {"Content-Type": "application/json"}, b"{}", 2)
    assert put.redirected(307, "/y") == Hop("PUT", "https://r/y", {"Content-Type": "application/json"}, b"{}", 2)
    assert put.redirected(302, "/y") == Hop("GET", "https://r/y", {})  # Go: a bodiless GET
    head = Hop("HEAD", "https://r/v2/x", {})
    assert head.redirected(303, "/y").method == "HEAD"
