"""A second look at issue 11's "auth never fails open": a misspelled or empty option inside ``auth``,
or a misspelled access rule, used to start a registry that let every signed-in user do everything.
Each such configuration now refuses to start, with the key named."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from server.helpers import ServerThread, free_port
from strata.errors import StrataError
from strata.server.auth.htpasswd import add_user
from strata.server.config import ConfigError, build_config


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _token_for(reg: ServerThread, user: str, scope: str) -> list[dict[str, Any]]:
    """The access a built-in token server grants ``user`` for ``scope``."""
    r = reg.get(f"/auth/token?service=strata-registry&scope={scope}", headers=_basic(user, "pw"))
    assert r.status == 200, r.body
    claims: dict[str, Any] = jwt.decode(r.json()["token"], options={"verify_signature": False})
    return list(claims["access"])


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    add_user(str(path), "alice", "pw", create=True)
    add_user(str(path), "bob", "pw")
    return path


def _access(tmp_path: Path, rules: object) -> Path:
    path = tmp_path / "access.yml"
    path.write_text(yaml.safe_dump(rules))
    return path


def test_access_rules_hold_when_spelled_right(tmp_path: Path, users: Path) -> None:
    """The baseline the misspellings below must not weaken: bob may not push to alice's repository."""
    rules = _access(tmp_path, [{"account": "alice", "name": "alice/*", "actions": ["pull", "push"]}])
    reg = ServerThread({"storage": {"inmemory": {}},
                        "auth": {"token": {"htpasswd": str(users), "accessfile": str(rules)}}})
    try:
        assert _token_for(reg, "bob", "repository:alice/x:pull,push") == [
            {"type": "repository", "name": "alice/x", "actions": []}]
        assert _token_for(reg, "alice", "repository:alice/x:pull,push")[0]["actions"] == ["pull", "push"]
    finally:
        reg.close()


MISSPELLED: list[tuple[dict[str, Any], str]] = [
    # without its access file every signed-in user may push and delete everywhere
    ({"token": {"htpasswd": "HT", "acessfile": "ACCESS"}},
     'unable to configure authorization (token): unknown option "acessfile"'),
    ({"token": {"htpasswd": "HT", "accessfile": ""}},
     'unable to configure authorization (token): "accessfile" must name a file'),
    ({"token": {"htpasswd": "HT", "accessfile": ["ACCESS"]}},
     'unable to configure authorization (token): "accessfile" must name a file'),
    ({"htpasswd": {"realm": "r", "path": "HT", "pathh": "HT"}},
     'unable to configure authorization (htpasswd): unknown option "pathh"'),
    # an external token server's tokens cannot be checked without its certificates
    ({"token": {"realm": "https://auth.example/token", "builtin": False}},
     'unable to configure authorization (token): token auth requires a valid option string: "rootcertbundle"'),
    ({"token": {"realm": "https://auth.example/token", "rootcertbundle": ""}},
     'unable to configure authorization (token): "rootcertbundle" must name a file'),
]


@pytest.mark.parametrize(("auth", "message"), MISSPELLED,
                         ids=["accessfile-typo", "accessfile-empty", "accessfile-list", "htpasswd-typo",
                              "external-without-bundle", "bundle-empty"])
def test_misspelled_auth_options_refuse_to_start(tmp_path: Path, users: Path, auth: dict[str, Any],
                                                 message: str) -> None:
    rules = _access(tmp_path, [{"account": "alice", "name": "alice/*", "actions": ["pull", "push"]}])
    text = yaml.safe_dump(auth).replace("HT", str(users)).replace("ACCESS", str(rules))
    with pytest.raises(ConfigError) as err:
        build_config({"storage": {"inmemory": {}}, "auth": yaml.safe_load(text)})
    assert str(err.value) == message


def test_misspelled_auth_option_stops_the_server(tmp_path: Path, users: Path) -> None:
    rules = _access(tmp_path, [{"account": "alice", "name": "alice/*", "actions": ["pull", "push"]}])
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({"auth": {"token": {"htpasswd": str(users), "acessfile": str(rules)}}}))
    run = subprocess.run(
        [sys.executable, "-m", "strata.server", "serve", "--config", str(cfg), "--root", str(tmp_path / "r"),
         "--addr", f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30, env=dict(os.environ))
    assert run.returncode == 1, run.stderr
    assert run.stderr == 'Error: unable to configure authorization (token): unknown option "acessfile"\n'


BAD_RULES: list[tuple[object, str]] = [
    # "acount" used to leave the rule's account at "*": every signed-in user got alice's rights
    ([{"acount": "alice", "name": "alice/*", "actions": ["pull", "push"]}], 'unknown key "acount"'),
    ([{"account": "alice", "nmae": "alice/*", "actions": ["pull", "push"]}], 'unknown key "nmae"'),
    ([{"name": "alice/*", "actions": ["push"]}], '"account" must be set'),
    ([{"account": "alice", "actions": ["push"]}], '"name" must be set'),
    ([{"account": "alice", "name": "alice/*", "actions": ["pul"]}], 'unknown action "pul"'),
    (["alice"], "not a mapping"),
    ({"acces": []}, 'unknown key "acces"'),
]


@pytest.mark.parametrize(("rules", "reason"), BAD_RULES,
                         ids=["account-typo", "name-typo", "no-account", "no-name", "action-typo", "not-mapping",
                              "top-typo"])
def test_misspelled_access_rules_refuse_to_start(tmp_path: Path, users: Path, rules: object, reason: str) -> None:
    path = _access(tmp_path, rules)
    with pytest.raises(StrataError) as err:
        ServerThread({"storage": {"inmemory": {}}, "auth": {"token": {"htpasswd": str(users), "accessfile": str(path)}}})
    assert str(err.value).startswith(f"invalid access file {path}: "), str(err.value)
    assert reason in str(err.value), str(err.value)


def test_ui_with_an_external_token_server_grants_nothing(tmp_path: Path) -> None:
    """An external token server decides alone. With ``auth.token.htpasswd`` also set (the UI can then
    sign users in), a UI user used to get every action on every repository (the access rules of
    the built-in server, absent, meant "everything"): mallory listed and deleted alice's image."""
    from server.helpers import Client
    from server.test_security_auth import TokenIssuer
    from server.uihelpers import UIClient, push_labelled_image

    issuer = TokenIssuer(tmp_path)
    add_user(str(tmp_path / "htpasswd"), "mallory", "pw", create=True)
    auth = issuer.auth_config()
    auth["token"]["htpasswd"] = str(tmp_path / "htpasswd")
    raw = {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "reg")}, "delete": {"enabled": True}},
           "auth": auth, "ui": {"enabled": True}}
    with ServerThread(raw) as s:
        api = Client(s.host, s.port, None, issuer.token("admin", ("alice/private", ["pull", "push"])))
        push_labelled_image(api, "alice/private", "1", {})
        ui = UIClient(s)
        assert ui.login("mallory", "pw").status == 303
        assert "alice/private" not in ui.get("/ui/").body.decode()
        assert ui.get("/ui/repo?name=alice/private").status == 404
        token = ui.csrf("/ui/")
        r = ui.send("POST", "/ui/delete", {"csrf": token, "name": "alice/private", "tag": "1"},
                    {"Origin": f"http://127.0.0.1:{s.port}"})
        assert r.status in (403, 404), r.status
        assert api.get("/v2/alice/private/manifests/1").status == 200


# --- settings strata knew by name but did not apply: each one left the registry more open --------


def _tls_server(tmp_path: Path, **tls: Any) -> tuple[ServerThread, Any]:
    from distribution.tlscerts import CA

    ca = CA(tmp_path / "pki")
    cert, key = ca.issue("server", ["127.0.0.1"])
    raw = {"storage": {"inmemory": {}}, "http": {"tls": {"certificate": str(cert), "key": str(key), **tls}}}
    return ServerThread(raw), ca


def _handshake(port: int, ca_path: Path, client: tuple[Path, Path] | None = None,
               version: Any = None) -> int:
    """The status of ``GET /v2/`` over TLS, or 0 when the server refuses the connection."""
    import http.client
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca_path))
    if client is not None:
        ctx.load_cert_chain(str(client[0]), str(client[1]))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/v2/")
        return conn.getresponse().status
    except (ssl.SSLError, ConnectionError):
        return 0
    finally:
        conn.close()


def test_tls_clientcas_requires_a_client_certificate(tmp_path: Path) -> None:
    """``http.tls.clientcas`` (distribution: mutual TLS, often the registry's only auth) was a known key
    that did nothing: every client got in without a certificate."""
    from distribution.tlscerts import CA

    clients = CA(tmp_path / "clients", name="client CA")
    good = clients.issue("client", ["alice"], client=True)
    stranger = CA(tmp_path / "other", name="other CA").issue("client", ["mallory"], client=True)
    reg, ca = _tls_server(tmp_path, clientcas=[str(clients.ca_path)])
    try:
        assert _handshake(reg.port, ca.ca_path, good) == 200
        assert _handshake(reg.port, ca.ca_path) == 0
        assert _handshake(reg.port, ca.ca_path, stranger) == 0
    finally:
        reg.close()


def test_tls_minimumtls_is_applied(tmp_path: Path) -> None:
    import ssl

    reg, ca = _tls_server(tmp_path, minimumtls="tls1.3")
    try:
        assert _handshake(reg.port, ca.ca_path, version=ssl.TLSVersion.TLSv1_3) == 200
        assert _handshake(reg.port, ca.ca_path, version=ssl.TLSVersion.TLSv1_2) == 0
    finally:
        reg.close()


UNAPPLIED: list[tuple[dict[str, Any], str]] = [
    # Let's Encrypt without a certificate: strata served plain HTTP, passwords in clear
    ({"http": {"tls": {"letsencrypt": {"cachefile": "/x", "email": "a@b"}}}},
     "http.tls.letsencrypt is not supported: configure http.tls.certificate and http.tls.key"),
    ({"http": {"tls": {"certificate": "/c", "key": "/k", "ciphersuites": ["TLS_RSA_WITH_RC4_128_SHA"]}}},
     "http.tls.ciphersuites is not supported: strata uses OpenSSL's defaults"),
    ({"http": {"tls": {"certificate": "/c", "key": "/k", "minimumtls": "tls9"}}},
     "invalid http.tls.minimumtls 'tls9': one of tls1.0, tls1.1, tls1.2, tls1.3"),
    ({"http": {"tls": {"certificate": "/c", "key": "/k", "clientcas": ""}}},
     "invalid http.tls.clientcas: a list of CA certificate files"),
    # a read-only registry (maintenance) that accepted pushes and deletes
    ({"storage": {"inmemory": {}, "maintenance": {"readonly": {"enabled": True}}}},
     "storage.maintenance.readonly is not supported: strata would accept writes"),
]


@pytest.mark.parametrize(("raw", "message"), UNAPPLIED,
                         ids=["letsencrypt", "ciphersuites", "minimumtls", "clientcas", "readonly"])
def test_settings_strata_cannot_apply_refuse_to_start(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(raw)
    assert str(err.value) == message
    # switched off, they are harmless
    if "readonly" in message:
        build_config({"storage": {"inmemory": {}, "maintenance": {"readonly": {"enabled": False}}}})


def test_configured_http_headers_are_sent(tmp_path: Path) -> None:
    """distribution's ``http.headers`` (its sample config: ``X-Content-Type-Options: [nosniff]``, often
    HSTS) were known and dropped."""
    raw = {"storage": {"inmemory": {}}, "http": {"headers": {
        "X-Content-Type-Options": ["nosniff"], "Strict-Transport-Security": ["max-age=63072000"]}}}
    with ServerThread(raw) as reg:
        for path in ("/v2/", "/v2/no/such/manifests/x"):
            r = reg.get(path)
            assert r.header("X-Content-Type-Options") == "nosniff", (path, r.headers)
            assert r.header("Strict-Transport-Security") == "max-age=63072000"


def test_ui_never_reads_a_huge_config_whose_descriptor_lies(tmp_path: Path) -> None:
    """The UI reads image configs up to 4 MiB; it judged by the manifest's declared size, so a pusher
    declaring ``size: 2`` for a huge config blob made every page view read all of it into memory."""
    import json

    from server.helpers import push_blob
    from server.uihelpers import UIClient

    def push(s: ServerThread, repo: str, pad: int) -> None:
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2001-02-03T04:05:06Z",
                          "rootfs": {"type": "layers", "diff_ids": []}, "pad": "x" * pad}).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": push_blob(s, repo, cfg), "size": 2}, "layers": []}).encode()
        r = s.request("PUT", f"/v2/{repo}/manifests/v1", body=manifest,
                      headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status == 201, r.body

    with ServerThread({"storage": {"inmemory": {}}, "ui": {"enabled": True}}) as s:
        push(s, "small/cfg", 10)
        push(s, "big/cfg", 5 << 20)
        ui = UIClient(s)
        assert "linux/amd64" in ui.get("/ui/repo?name=small/cfg").body.decode()
        assert "linux/amd64" not in ui.get("/ui/repo?name=big/cfg").body.decode()


@pytest.mark.parametrize("value", ["", "{}", "null"])
def test_empty_auth_from_the_environment_does_not_switch_auth_off(tmp_path: Path, users: Path, value: str) -> None:
    """``STRATA_REGISTRY_AUTH=`` (a template's unset variable) replaced the file's auth section with
    nothing: a registry configured with htpasswd served everyone."""
    from strata.server.config import load_config

    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({"auth": {"htpasswd": {"realm": "r", "path": str(users)}}}))
    with pytest.raises(ConfigError, match="STRATA_REGISTRY_AUTH is empty: it would remove the auth that "):
        load_config(str(cfg), env={"STRATA_REGISTRY_AUTH": value})
    # another controller from the environment is an override, not a removal
    other = load_config(str(cfg), env={"STRATA_REGISTRY_AUTH": "{token: {htpasswd: " + str(users) + "}}"})
    assert other.token is not None and other.htpasswd is None


@pytest.mark.parametrize("name", ["STRATA_REGISTRY_HTTP_TLS", "STRATA_REGISTRY_HTTP_TLS_CERTIFICATE",
                                  "STRATA_REGISTRY_HTTP_TLS_CLIENTCAS"])
def test_empty_tls_from_the_environment_does_not_switch_tls_off(tmp_path: Path, name: str) -> None:
    """Likewise an empty TLS variable turned a TLS registry into a plain-HTTP one (passwords in clear)
    or dropped its client-certificate requirement."""
    from strata.server.config import load_config

    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({"http": {"tls": {"certificate": "/c.pem", "key": "/k.pem", "clientcas": ["/ca"]}}}))
    with pytest.raises(ConfigError, match=f"{name} is empty"):
        load_config(str(cfg), env={name: ""})
    assert load_config(str(cfg), env={}).tls_clientcas == ["/ca"]


def test_unreadable_clientcas_refuse_to_start(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(ConfigError, match=r"could not read http.tls.clientcas .*nope.pem: no such file or directory"):
        _tls_server(tmp_path, clientcas=[str(tmp_path / "nope.pem")])
    with pytest.raises(ConfigError, match=r"could not read http.tls.clientcas .*junk.pem: "):
        _tls_server(tmp_path / "2", clientcas=[str(tmp_path / "junk.pem")])
