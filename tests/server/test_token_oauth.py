"""The token endpoint's OAuth2 form (POST grant_type=password / refresh_token) and refresh tokens,
driven with a raw HTTP client."""

from __future__ import annotations

import base64
import time
import urllib.parse
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from server.helpers import Resp, ServerThread, push_image
from server.test_operating import PASSWORD, USER, _token_server
from strata.server.auth.htpasswd import add_user

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _post(reg: ServerThread, **fields: str) -> Resp:
    return reg.request("POST", "/auth/token", body=urllib.parse.urlencode(fields).encode(), headers=FORM)


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_password_grant_with_refresh_token(tmp_path: Path) -> None:
    with _token_server(tmp_path) as reg:
        r = _post(reg, grant_type="password", username="bob", password="pw-bob", service="svc",
                  client_id="test", access_type="offline", scope="repository:bob/app:pull,push repository:alice/x:pull")
        assert r.status == 200, r.body
        body = r.json()
        assert body["expires_in"] == 300 and body["issued_at"].endswith("Z")
        assert body["scope"] == "repository:bob/app:pull,push"  # nothing granted on alice/x
        claims = _claims(body["access_token"])
        assert claims["sub"] == "bob" and claims["aud"] == "svc"
        assert claims["access"] == [{"type": "repository", "name": "bob/app", "actions": ["pull", "push"]},
                                    {"type": "repository", "name": "alice/x", "actions": []}]
        refresh = body["refresh_token"]
        assert _claims(refresh)["aud"] != "svc"
        # the access token works at the registry; the refresh token does not
        reg.default_headers = {"Authorization": f"Bearer {body['access_token']}"}
        push_image(reg, "bob/app", "v1")
        r = reg.request("HEAD", "/v2/bob/app/manifests/v1", headers={"Authorization": f"Bearer {refresh}"})
        assert r.status == 401
        reg.default_headers = {}
        # refresh: a new access token for other scopes, no new refresh token
        r = _post(reg, grant_type="refresh_token", refresh_token=refresh, service="svc", client_id="test",
                  scope="repository:bob/other:pull")
        assert r.status == 200, r.body
        body2 = r.json()
        assert "refresh_token" not in body2 and body2["scope"] == "repository:bob/other:pull"
        assert _claims(body2["access_token"])["sub"] == "bob"
        # without access_type=offline there is no refresh token
        r = _post(reg, grant_type="password", username="bob", password="pw-bob", service="svc", client_id="t")
        assert r.status == 200 and "refresh_token" not in r.json() and r.json()["scope"] == ""


def test_oauth_errors(tmp_path: Path) -> None:
    with _token_server(tmp_path) as reg:
        r = _post(reg, grant_type="password", username="bob", password="nope", service="svc", client_id="t")
        assert r.status == 401 and r.json()["error"] == "invalid_grant"
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        r = _post(reg, grant_type="password", username="", password="", service="svc")
        assert r.status == 401
        r = _post(reg, grant_type="authorization_code", code="x", service="svc")
        assert r.status == 400 and r.json()["error"] == "unsupported_grant_type"
        r = _post(reg, grant_type="password", username="bob", password="pw-bob", service="other")
        assert r.status == 400 and r.json()["error"] == "invalid_request"
        r = reg.request("POST", "/auth/token", body=b'{"grant_type": "password"}',
                        headers={"Content-Type": "application/json"})
        assert r.status == 400
        for bad in ("", "not-a-jwt"):
            r = _post(reg, grant_type="refresh_token", refresh_token=bad, service="svc")
            assert r.status == 401 and r.json()["error"] == "invalid_grant"
        # an access token is not a refresh token; a refresh token signed by another key is refused
        ok = _post(reg, grant_type="password", username="bob", password="pw-bob", service="svc",
                   access_type="offline").json()
        r = _post(reg, grant_type="refresh_token", refresh_token=ok["access_token"], service="svc")
        assert r.status == 401
        forged = jwt.encode(_claims(ok["refresh_token"]) | {"sub": USER}, ec.generate_private_key(ec.SECP256R1()),
                            algorithm="ES256")
        assert _post(reg, grant_type="refresh_token", refresh_token=forged, service="svc").status == 401


def test_refresh_token_revoked_by_password_change(tmp_path: Path) -> None:
    with _token_server(tmp_path) as reg:
        refresh = _post(reg, grant_type="password", username=USER, password=PASSWORD, service="svc",
                        access_type="offline").json()["refresh_token"]
        assert _post(reg, grant_type="refresh_token", refresh_token=refresh, service="svc").status == 200
        time.sleep(0.01)
        add_user(str(tmp_path / "htpasswd"), USER, "a-new-password")
        r = _post(reg, grant_type="refresh_token", refresh_token=refresh, service="svc")
        assert r.status == 401 and r.json()["error"] == "invalid_grant"


def test_get_with_offline_token(tmp_path: Path) -> None:
    with _token_server(tmp_path) as reg:
        basic = {"Authorization": "Basic " + base64.b64encode(b"bob:pw-bob").decode()}
        r = reg.get("/auth/token?service=svc&client_id=docker&offline_token=true&account=bob", headers=basic)
        assert r.status == 200
        refresh = r.json()["refresh_token"]
        r = _post(reg, grant_type="refresh_token", refresh_token=refresh, service="svc", client_id="docker",
                  scope="repository:bob/app:pull")
        assert r.status == 200 and r.json()["scope"] == "repository:bob/app:pull"
        # anonymous callers get no refresh token
        r = reg.get("/auth/token?service=svc&offline_token=true")
        assert r.status == 200 and "refresh_token" not in r.json()
