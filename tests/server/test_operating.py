"""Operating the registry: config + env overrides, htpasswd, token endpoint, notifications, CLI."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_key

from server.helpers import ServerThread, push_blob, push_image
from strata.server.auth.htpasswd import add_user
from strata.server.config import ConfigError, load_config

USER, PASSWORD = "alice", "pw-alice"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_config_file_env_and_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({
        "version": 0.1,
        "storage": {"filesystem": {"rootdirectory": "/from/file"}, "delete": {"enabled": False}},
        "http": {"addr": ":5000", "tls": {"certificate": "/c.pem", "key": "/k.pem"}},
        "auth": {"htpasswd": {"realm": "r", "path": "/h"}},
        "notifications": {"endpoints": [{"name": "hook", "url": "http://x/e", "timeout": "500ms",
                                         "threshold": 5, "backoff": "2s", "headers": {"X-A": ["1"]}}]},
    }))
    c = load_config(str(cfg), env={})
    assert (c.root, c.delete_enabled, c.addr) == ("/from/file", False, ":5000")
    assert (c.tls_certificate, c.tls_key) == ("/c.pem", "/k.pem")
    assert c.htpasswd is not None and c.htpasswd.path == "/h"
    ep = c.notifications[0]
    assert (ep.name, ep.timeout, ep.threshold, ep.backoff, ep.headers) == ("hook", 0.5, 5, 2.0, {"X-A": ["1"]})
    env = {"STRATA_REGISTRY_STORAGE_DELETE_ENABLED": "true", "STRATA_REGISTRY_HTTP_ADDR": "0.0.0.0:6000",
           "STRATA_REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/from/env", "OTHER": "x"}
    c = load_config(str(cfg), env=env)
    assert (c.root, c.delete_enabled, c.addr) == ("/from/env", True, "0.0.0.0:6000")
    c = load_config(str(cfg), env=env, addr="127.0.0.1:7000", root="/from/flag")
    assert (c.root, c.addr) == ("/from/flag", "127.0.0.1:7000")
    cfg.write_text("- not a mapping\n")
    with pytest.raises(ConfigError):
        load_config(str(cfg), env={})


def test_config_values_refused_with_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^listen tcp: address nonsense: missing port in address$"):
        load_config(env={}, addr="nonsense")
    with pytest.raises(ConfigError, match="invalid port"):
        load_config(env={}, addr="127.0.0.1:99999")
    with pytest.raises(ConfigError, match=r"validation\.manifests\.maxsize: 'abc' is not a number"):
        load_config(env={"STRATA_REGISTRY_VALIDATION_MANIFESTS_MAXSIZE": "abc"})
    rsa = rsa_key.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for name, data, message in (("rsa.pem", rsa, "must be an EC key"), ("junk.pem", b"junk", "invalid token signing key")):
        key = tmp_path / name
        key.write_bytes(data)
        cfg = tmp_path / "token.yml"
        cfg.write_text(yaml.safe_dump({"auth": {"token": {"realm": "r", "service": "s", "issuer": "i",
                                                          "signingkey": str(key)}}}))
        run = subprocess.run([sys.executable, "-m", "strata.server", "serve", "--config", str(cfg),
                              "--root", str(tmp_path / "r")], capture_output=True, text=True, timeout=30)
        assert run.returncode == 1 and message in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_htpasswd_auth(tmp_path: Path) -> None:
    htp = tmp_path / "htpasswd"
    add_user(str(htp), USER, PASSWORD, create=True)
    assert htp.read_text().startswith(f"{USER}:$2y$")
    raw = {"storage": {"inmemory": {}}, "auth": {"htpasswd": {"realm": "strata-realm", "path": str(htp)}}}
    with ServerThread(raw) as reg:
        r = reg.get("/v2/")
        assert r.status == 401 and r.codes == ["UNAUTHORIZED"]
        assert r.header("WWW-Authenticate") == 'Basic realm="strata-realm"'
        assert reg.get("/v2/", headers=_basic(USER, "wrong")).status == 401
        assert reg.get("/v2/", headers=_basic(USER, PASSWORD)).status == 200
        reg.default_headers = _basic(USER, PASSWORD)
        push_image(reg, "private/app", "v1")
        # a user added later is picked up without a restart
        add_user(str(htp), "bob", "pw-bob")
        assert reg.get("/v2/_catalog", headers=_basic("bob", "pw-bob")).json()["repositories"] == ["private/app"]


def _token_server(tmp_path: Path, anonymous: bool = False) -> ServerThread:
    htp = tmp_path / "htpasswd"
    add_user(str(htp), USER, PASSWORD, create=True)
    add_user(str(htp), "bob", "pw-bob")
    access = tmp_path / "access.yml"
    access.write_text(yaml.safe_dump([
        {"account": USER, "name": "*", "actions": ["*"]},
        {"account": "bob", "name": "bob/*", "actions": ["pull", "push"]},
        {"account": "*", "name": "public/*", "actions": ["pull"]},
    ]))
    raw = {"storage": {"inmemory": {}}, "auth": {"token": {
        "service": "svc", "issuer": "iss", "htpasswd": str(htp), "accessfile": str(access),
        "signingkey": str(tmp_path / "key.pem"), "anonymouspull": anonymous}}}
    return ServerThread(raw)


def _token(reg: ServerThread, scope: str, creds: tuple[str, str] | None) -> str:
    r = reg.get(f"/auth/token?service=svc&scope={scope}", headers=_basic(*creds) if creds else {})
    assert r.status == 200, r.body
    body = r.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    return str(body["token"])


def test_token_auth_flow(tmp_path: Path) -> None:
    with _token_server(tmp_path) as reg:
        r = reg.request("POST", "/v2/bob/app/blobs/uploads/")
        assert r.status == 401
        challenge = r.header("WWW-Authenticate") or ""
        assert challenge.startswith('Bearer realm="http://127.0.0.1:')
        assert 'service="svc"' in challenge and 'scope="repository:bob/app:pull,push"' in challenge
        tok = _token(reg, "repository:bob/app:pull,push", ("bob", "pw-bob"))
        claims = jwt.decode(tok, options={"verify_signature": False})
        assert claims["sub"] == "bob" and claims["aud"] == "svc" and claims["iss"] == "iss"
        assert claims["access"] == [{"type": "repository", "name": "bob/app", "actions": ["pull", "push"]}]
        assert jwt.get_unverified_header(tok)["alg"] == "ES256"
        reg.default_headers = {"Authorization": f"Bearer {tok}"}
        push_image(reg, "bob/app", "v1")
        # bob may not push elsewhere: the token he gets carries no actions there
        other = _token(reg, "repository:alice/app:pull,push", ("bob", "pw-bob"))
        r = reg.request("POST", "/v2/alice/app/blobs/uploads/", headers={"Authorization": f"Bearer {other}"})
        assert r.status == 401 and r.codes == ["DENIED"] and "insufficient_scope" in (r.header("WWW-Authenticate") or "")
        # a forged token (other key) is refused
        from cryptography.hazmat.primitives.asymmetric import ec

        forged = jwt.encode({**claims, "access": [{"type": "repository", "name": "alice/app", "actions": ["push"]}]},
                            ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
        assert reg.request("POST", "/v2/alice/app/blobs/uploads/", headers={"Authorization": f"Bearer {forged}"}).status == 401
        # wrong password at the token endpoint
        assert reg.get("/auth/token?service=svc", headers=_basic("bob", "nope")).status == 401
        # anonymous gets a token with no access
        anon = _token(reg, "repository:bob/app:pull", None)
        assert jwt.decode(anon, options={"verify_signature": False})["access"][0]["actions"] == []


def test_token_anonymous_pull(tmp_path: Path) -> None:
    with _token_server(tmp_path, anonymous=True) as reg:
        tok = _token(reg, "repository:bob/app:pull,push", ("bob", "pw-bob"))
        reg.default_headers = {"Authorization": f"Bearer {tok}"}
        d, _ = push_image(reg, "bob/app", "v1")
        anon = _token(reg, "repository:bob/app:pull,push", None)
        assert jwt.decode(anon, options={"verify_signature": False})["access"][0]["actions"] == ["pull"]
        r = reg.get("/v2/bob/app/manifests/v1", headers={"Authorization": f"Bearer {anon}",
                                                         "Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status == 200 and r.header("Docker-Content-Digest") == d


class _Hook(BaseHTTPRequestHandler):
    events: list[dict[str, Any]] = []
    fail_first = [2]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Hook.fail_first[0] > 0:
            _Hook.fail_first[0] -= 1
            self.send_response(500)
            self.end_headers()
            return
        assert self.headers["Content-Type"] == "application/vnd.docker.distribution.events.v1+json"
        _Hook.events.extend(json.loads(body)["events"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_notifications_are_delivered_and_retried(tmp_path: Path) -> None:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=hook.serve_forever, daemon=True)
    t.start()
    try:
        raw = {"storage": {"inmemory": {}, "delete": {"enabled": True}}, "notifications": {"endpoints": [{
            "name": "hook", "url": f"http://127.0.0.1:{hook.server_address[1]}/events",
            "timeout": "30s", "backoff": "100ms", "threshold": 3}]}}  # no delivery times out: exactly 2 fail
        with ServerThread(raw) as reg:
            d, _ = push_image(reg, "notify/me", "v1", layers=[])
            reg.get("/v2/notify/me/manifests/v1")
            reg.request("DELETE", "/v2/notify/me/manifests/v1")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(e["action"] == "delete" for e in _Hook.events):
                time.sleep(0.05)
            manifest_events = [e for e in _Hook.events if "/manifests/" in e["target"]["url"]]
            assert [e["action"] for e in manifest_events] == ["push", "pull", "delete"]
            push = manifest_events[0]
            assert push["target"]["digest"] == d and push["target"]["repository"] == "notify/me"
            assert push["target"]["tag"] == "v1" and push["target"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
            assert {"id", "timestamp", "request", "actor", "source"} <= set(push)
            assert any(e["action"] == "push" and "/blobs/" in e["target"]["url"] for e in _Hook.events)
            assert "strata_registry_notifications_failures_hook 2" in reg.debug.get("/metrics").body.decode()
    finally:
        hook.shutdown()
        hook.server_close()


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "strata.server", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_htpasswd_and_garbage_collect(tmp_path: Path) -> None:
    htp = tmp_path / "htpasswd"
    r = _cli("htpasswd", "-c", str(htp), USER, "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = _cli("htpasswd", str(htp), "bob", "pw")
    assert r.returncode == 0
    assert [ln.split(":")[0] for ln in htp.read_text().split()] == [USER, "bob"]
    r = _cli("htpasswd", str(tmp_path / "missing"), "x", "y")
    assert r.returncode == 1 and r.stderr.startswith("Error: ")
    root = tmp_path / "root"
    with ServerThread({"storage": {"filesystem": {"rootdirectory": str(root)}}}) as reg:
        push_image(reg, "keep", "v1")
        orphan = push_blob(reg, "keep", b"orphan")
    r = _cli("garbage-collect", "--root", str(root), "--dry-run", "--grace-period", "0s")
    assert r.returncode == 0 and f"would delete blob {orphan}" in r.stdout
    assert (root / f"docker/registry/v2/blobs/sha256/{orphan[7:9]}/{orphan[7:]}/data").exists()
    r = _cli("garbage-collect", "--root", str(root), "--grace-period", "0s")
    assert r.returncode == 0 and f"deleted blob {orphan}" in r.stdout
    assert not (root / f"docker/registry/v2/blobs/sha256/{orphan[7:9]}/{orphan[7:]}").exists()
    r = _cli("serve")
    assert r.returncode == 125 and "no storage configured" in r.stderr


def test_access_log_and_main_cli(tmp_path: Path) -> None:
    from server.helpers import ServerProcess
    from strata.cli.main import main

    assert main(["registry", "htpasswd", "-c", str(tmp_path / "h"), "carol", "pw"]) == 0
    assert (tmp_path / "h").read_text().startswith("carol:$2y$")
    with ServerProcess(tmp_path / "root") as srv:
        srv.get("/v2/")
        srv.get("/v2/nope/manifests/latest")
        # the server logs a request once it has answered it: poll (it may run late on a loaded machine)
        wanted = ['"GET /v2/ HTTP/1.1" 200', '"GET /v2/nope/manifests/latest HTTP/1.1" 404']
        deadline = time.monotonic() + 30
        while not all(line in (log := srv.log.read_text()) for line in wanted):
            assert time.monotonic() < deadline, log
            time.sleep(0.05)
