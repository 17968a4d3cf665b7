"""Security of the registry's auth (issue 11): grants of an external token server's tokens, auth that
must not fail open, the built-in token server's realm, bcrypt work per request, user enumeration,
deletes off by default."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import jwt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import peers
from server.helpers import Resp, ServerThread, free_port, push_blob, push_image
from strata.server.auth.htpasswd import add_user
from strata.server.auth.token import _key_id
from strata.server.config import ConfigError, build_config, load_config

SERVICE, ISSUER, REALM = "registry.test", "issuer.test", "https://auth.example/token"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- 2: an external token server's grants decide mounts and search ------------------------------


class TokenIssuer:
    """An external token server's key, its certificate bundle, and tokens it signs."""

    def __init__(self, directory: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1)).sign(self.key, hashes.SHA256()))
        self.bundle = directory / "bundle.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def auth_config(self) -> dict[str, Any]:
        return {"token": {"realm": REALM, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(self.bundle)}}

    def token(self, sub: str, *grants: tuple[str, list[str]]) -> dict[str, str]:
        now = int(time.time())
        access = [{"type": "repository", "name": name, "actions": actions} for name, actions in grants]
        claims = {"iss": ISSUER, "sub": sub, "aud": SERVICE, "exp": now + 300, "nbf": now - 1, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        tok = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": _key_id(self.key.public_key())})
        return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def issuer(tmp_path: Path) -> TokenIssuer:
    return TokenIssuer(tmp_path)


@pytest.fixture
def external(issuer: TokenIssuer, tmp_path: Path) -> Iterator[ServerThread]:
    raw = {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "reg")}}, "auth": issuer.auth_config()}
    with ServerThread(raw) as reg:
        yield reg


MOUNT_CASES = {
    "push on the target only": [("mallory/x", ["pull", "push"])],
    "no actions on the source": [("mallory/x", ["pull", "push"]), ("alice/private", [])],
    "pull on the source": [("mallory/x", ["pull", "push"]), ("alice/private", ["pull"])],
}


def _sorted_actions(scope: str) -> str:
    """``repository:x:push,pull`` -> ``repository:x:pull,push`` (distribution's order varies)."""
    head, _, actions = scope.rpartition(":")
    return f"{head}:{','.join(sorted(actions.split(',')))}"


def _mount_answers(post: Any, issuer: TokenIssuer, digest: str,
                   check: Any = None) -> dict[str, tuple[int, list[str], str]]:
    """Per case: status, error codes and the challenge's scope list of a mount from alice/private;
    ``check(case)`` runs after each."""
    out = {}
    for case, grants in MOUNT_CASES.items():
        status, challenge, codes = post(f"/v2/mallory/x/blobs/uploads/?mount={digest}&from=alice/private",
                                        issuer.token("mallory", *grants))
        scopes = " ".join(sorted(_sorted_actions(item) for item in challenge.partition('scope="')[2].partition('"')[0].split()))
        out[case] = (status, codes, scopes)
        if check is not None:
            check(case)
    return out


def _strata_post(reg: ServerThread) -> Any:
    def post(path: str, headers: dict[str, str]) -> tuple[int, str, list[str]]:
        r = reg.request("POST", path, headers=headers)
        codes = r.codes if r.status >= 400 else []
        return r.status, r.header("WWW-Authenticate") or "", codes
    return post


def test_external_token_mount_needs_pull_on_source(external: ServerThread, issuer: TokenIssuer) -> None:
    secret = os.urandom(64)
    d = push_blob_as(external, issuer.token("alice", ("alice/private", ["pull", "push"])), "alice/private", secret)
    mallory = issuer.token("mallory", ("mallory/x", ["pull"]))
    readable: dict[str, bytes | None] = {}

    def check(case: str) -> None:
        r = external.request("GET", f"/v2/mallory/x/blobs/{d}", headers=mallory)
        readable[case] = r.body if r.status == 200 else None

    answers = _mount_answers(_strata_post(external), issuer, d, check)
    both = "repository:alice/private:pull repository:mallory/x:pull,push"
    assert answers["push on the target only"] == (401, ["DENIED"], both)
    assert answers["no actions on the source"] == (401, ["DENIED"], both)
    # the refused mounts linked nothing: mallory cannot read alice's blob through her repository
    assert readable["push on the target only"] is None and readable["no actions on the source"] is None
    assert answers["pull on the source"][0] == 201
    assert readable["pull on the source"] == secret


def push_blob_as(reg: ServerThread, auth: dict[str, str], repo: str, data: bytes) -> str:
    reg.default_headers = auth
    try:
        return push_blob(reg, repo, data)
    finally:
        reg.default_headers = {}


def test_external_token_search_lists_only_pullable(external: ServerThread, issuer: TokenIssuer) -> None:
    for repo in ("alice/private", "mallory/x", "team/app"):
        external.default_headers = issuer.token("admin", (repo, ["pull", "push"]))
        push_image(external, repo, "v1")
    external.default_headers = {}
    mallory = issuer.token("mallory", ("mallory/x", ["pull", "push"]), ("team/app", ["pull"]),
                           ("alice/private", ["push"]))
    found = external.get("/v1/search?q=", headers=mallory).json()
    assert [r["name"] for r in found["results"]] == ["mallory/x", "team/app"] and found["num_results"] == 2
    # no token, or a token the registry does not trust, lists nothing
    assert external.get("/v1/search?q=").json()["num_results"] == 0
    forged = TokenIssuer(external_root(external)).token("mallory", ("alice/private", ["pull"]))
    assert external.get("/v1/search?q=", headers=forged).json()["num_results"] == 0


def external_root(reg: ServerThread) -> Path:
    root = Path(str(reg.config.root)).parent / "forger"
    root.mkdir(exist_ok=True)
    return root


def _start_distribution(tmp: Path, issuer: TokenIssuer) -> tuple[subprocess.Popen[bytes], int]:
    peers.ensure_debs("docker-registry")
    port = free_port()
    cfg = tmp / "distribution.yml"
    cfg.write_text(yaml.safe_dump({"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(tmp / "dist")}},
                                   "http": {"addr": f"127.0.0.1:{port}"}, "auth": issuer.auth_config()}))
    proc = subprocess.Popen([peers.REGISTRY_BIN, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60  # a loaded machine
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
        except urllib.error.HTTPError:
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("docker-registry did not start")


@pytest.mark.peers
def test_mount_answers_like_distribution(external: ServerThread, issuer: TokenIssuer, tmp_path: Path) -> None:
    proc, port = _start_distribution(tmp_path, issuer)
    try:
        def post(path: str, headers: dict[str, str]) -> tuple[int, str, list[str]]:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST", headers=headers, data=b"")
            try:
                with urllib.request.urlopen(req) as resp:
                    return resp.status, "", []
            except urllib.error.HTTPError as e:
                import json

                return e.code, e.headers.get("WWW-Authenticate", ""), [x["code"] for x in json.loads(e.read())["errors"]]

        data = os.urandom(64)
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        alice = issuer.token("alice", ("alice/private", ["pull", "push"]))
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/alice/private/blobs/uploads/", method="POST",
                                     data=b"", headers=alice)
        location = urllib.request.urlopen(req).headers["Location"]
        req = urllib.request.Request(f"{location}&digest={d}", method="PUT", data=data,
                                     headers={**alice, "Content-Type": "application/octet-stream"})
        assert urllib.request.urlopen(req).status == 201
        theirs = _mount_answers(post, issuer, d)
        push_blob_as(external, issuer.token("alice", ("alice/private", ["pull", "push"])), "alice/private", data)
        ours = _mount_answers(_strata_post(external), issuer, d)
    finally:
        proc.terminate()
        proc.wait(10)
    for case in MOUNT_CASES:
        # status and the challenge's scopes as distribution; strata words a signed-in user's
        # missing grant as DENIED where distribution says UNAUTHORIZED (both 401)
        assert ours[case][0] == theirs[case][0], case
        assert ours[case][2] == theirs[case][2], case


# --- 4: auth never fails open; unknown keys are reported ----------------------------------------


FAIL_OPEN: list[tuple[dict[str, Any], str]] = [
    ({"htpasswd": {"realm": "r"}},
     'unable to configure authorization (htpasswd): "path" must be set for htpasswd access controller'),
    ({"htpasswd": {"path": "/etc/htpasswd"}},
     'unable to configure authorization (htpasswd): "realm" must be set for htpasswd access controller'),
    ({"htpasswd": {"realm": "r", "path": ""}},
     "unable to configure authorization (htpasswd): failed to open htpasswd path open : no such file or directory"),
    ({"htpaswd": {"realm": "r", "path": "/etc/htpasswd"}},
     "unable to configure authorization (htpaswd): no access controller registered with name: htpaswd"),
    ({"htpasswd": {"realm": "r", "path": "/x"}, "token": {}},
     "must provide exactly one type. Provided: [htpasswd token]"),
]


@pytest.mark.parametrize(("auth", "message"), FAIL_OPEN,
                         ids=["no-path", "no-realm", "empty-path", "misspelled-provider", "two-providers"])
def test_auth_config_that_would_fail_open_is_refused(auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config({"storage": {"inmemory": {}}, "auth": auth})
    assert str(err.value) == message


@pytest.mark.peers
def test_refusals_are_worded_as_distribution(tmp_path: Path) -> None:
    peers.ensure_debs("docker-registry")
    for auth, _ in FAIL_OPEN:
        cfg = tmp_path / "distribution.yml"
        cfg.write_text(yaml.safe_dump({"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(tmp_path)}},
                                       "http": {"addr": f"127.0.0.1:{free_port()}"}, "auth": auth}))
        try:
            run = subprocess.run([peers.REGISTRY_BIN, "serve", str(cfg)], capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"distribution started with {auth}")
        with pytest.raises(ConfigError) as err:
            build_config({"storage": {"inmemory": {}}, "auth": auth})
        # distribution lists several providers in Go's (random) map order: compare them as a set
        stderr = run.stderr.replace("[token htpasswd]", "[htpasswd token]")
        assert run.returncode != 0 and str(err.value) in stderr, (auth, run.stderr[-500:])


def test_empty_htpasswd_path_from_environment_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({"auth": {"htpasswd": {"realm": "r", "path": str(tmp_path / "htpasswd")}}}))
    with pytest.raises(ConfigError, match='"path" must be set'):
        load_config(str(cfg), env={"STRATA_REGISTRY_AUTH_HTPASSWD_PATH": ""})
    run = subprocess.run(
        [sys.executable, "-m", "strata.server", "serve", "--config", str(cfg), "--root", str(tmp_path / "r"),
         "--addr", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=30, env={**os.environ, "STRATA_REGISTRY_AUTH_HTPASSWD_PATH": ""},
    )
    assert run.returncode == 1, run.stderr
    assert run.stderr == ('Error: unable to configure authorization (htpasswd): "path" must be set for '
                          "htpasswd access controller\n")


def test_unknown_config_keys_are_reported(tmp_path: Path) -> None:
    raw = {"storage": {"filesystem": {"rootdirectory": str(tmp_path)}, "delete": {"enabeld": True}},
           "http": {"adr": "x"}, "bogus": 1}
    assert build_config(raw).warnings == [
        "unknown configuration key 'storage.delete.enabeld' ignored", "unknown configuration key 'http.adr' ignored",
        "unknown configuration key 'bogus' ignored",
    ]
    # inside auth a misspelling could leave the registry open: refused (tests/server/test_security_review.py)
    with pytest.raises(ConfigError, match='unknown option "servcie"'):
        build_config({**raw, "auth": {"token": {"realm": REALM, "servcie": "s"}}})
    missing = build_config({"auth": {"htpasswd": {"realm": "r", "path": str(tmp_path / "nope")}}})
    assert missing.warnings == [f"htpasswd file {tmp_path / 'nope'} does not exist: nobody can sign in until it does"]
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({"storage": {"filesystem": {"rootdirectory": str(tmp_path)}}, "http": {"adr": 1}}))
    run = subprocess.run([sys.executable, "-m", "strata", "registry", "garbage-collect", "--dry-run", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stderr == "WARNING: unknown configuration key 'http.adr' ignored\n", run.stderr


# --- 6: the built-in token server's realm -----------------------------------------------------------


def _realm(reg: ServerThread, headers: dict[str, str] | None = None) -> str:
    challenge = reg.get("/v2/", headers=headers or {}).header("WWW-Authenticate") or ""
    return challenge.partition('realm="')[2].partition('"')[0]


def _builtin(tmp_path: Path, **http: Any) -> ServerThread:
    raw = {"storage": {"inmemory": {}}, "http": http,
           "auth": {"token": {"service": SERVICE, "issuer": ISSUER, "signingkey": str(tmp_path / "key.pem")}}}
    return ServerThread(raw)


def test_realm_comes_from_config_not_the_request(tmp_path: Path) -> None:
    with _builtin(tmp_path, host="https://registry.example.com") as reg:
        assert _realm(reg) == "https://registry.example.com/auth/token"
        assert _realm(reg, {"Host": "evil.example", "X-Forwarded-Proto": "http"}) == "https://registry.example.com/auth/token"
    with _builtin(tmp_path) as reg:
        # forwarded headers from an untrusted peer are ignored; a hostile Host is not echoed
        assert _realm(reg) == f"http://127.0.0.1:{reg.port}/auth/token"
        assert _realm(reg, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "x.example"}) == \
            f"http://127.0.0.1:{reg.port}/auth/token"
        assert _realm(reg, {"Host": 'a"b, error="x'}).startswith("http://127.0.0.1:")


def test_realm_behind_a_trusted_tls_proxy_is_https(tmp_path: Path) -> None:
    with _builtin(tmp_path, trustedproxies=["127.0.0.0/8"]) as reg:
        assert _realm(reg, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "registry.example.com"}) == \
            "https://registry.example.com/auth/token"


def test_realm_of_a_tls_registry_is_never_http(tmp_path: Path) -> None:
    certs = peers.make_ca(tmp_path / "certs")
    with _builtin(tmp_path, tls={"certificate": str(certs.cert), "key": str(certs.key)},
                  trustedproxies=["127.0.0.1"]) as reg:
        assert _realm(reg).startswith("https://127.0.0.1:")
        assert _realm(reg, {"X-Forwarded-Proto": "http"}).startswith("https://")


# --- 7 and 13: bcrypt work per request; no user enumeration by timing ---------------------------


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return bool(real(password, hashed))

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_search_with_a_wrong_password_is_one_bcrypt(tmp_path: Path, bcrypt_calls: list[bytes], kind: str) -> None:
    htp = tmp_path / "htpasswd"
    add_user(str(htp), "alice", "pw-alice", create=True)
    storage = {"filesystem": {"rootdirectory": str(tmp_path / "reg")}}
    with ServerThread({"storage": storage}) as reg:
        for i in range(30):
            push_image(reg, f"repo{i}/app", "v1", layers=[])
    auth: dict[str, Any] = {"htpasswd": {"realm": "r", "path": str(htp)}}
    if kind == "token":
        auth = {"token": {"service": SERVICE, "issuer": ISSUER, "htpasswd": str(htp), "signingkey": str(tmp_path / "k")}}
    with ServerThread({"storage": storage, "auth": auth}) as reg:
        assert reg.get("/v1/search?q=app", headers=_basic("alice", "pw-alice")).json()["num_results"] == 30
        bcrypt_calls.clear()
        r = reg.get("/v1/search?q=app", headers=_basic("alice", "wrong"))
        assert r.status == 200 and r.json()["num_results"] == 0
        assert len(bcrypt_calls) == 1, len(bcrypt_calls)
        # the same wrong password again within seconds costs no bcrypt at all
        assert reg.get("/v1/search?q=app", headers=_basic("alice", "wrong")).json()["num_results"] == 0
        assert len(bcrypt_calls) == 1


def test_unknown_user_costs_a_bcrypt_like_a_known_one(tmp_path: Path, bcrypt_calls: list[bytes]) -> None:
    htp = tmp_path / "htpasswd"
    add_user(str(htp), "alice", "pw-alice", create=True)
    raw = {"storage": {"inmemory": {}}, "auth": {"htpasswd": {"realm": "r", "path": str(htp)}}}
    with ServerThread(raw) as reg:
        reg.get("/v2/", headers=_basic("nobody", "warm-up"))  # the dummy hash is made once

        def timed(user: str, n: int) -> float:
            best = 10.0
            for i in range(n):
                started = time.perf_counter()
                assert reg.get("/v2/", headers=_basic(user, f"guess-{i}-{os.urandom(4).hex()}")).status == 401
                best = min(best, time.perf_counter() - started)
            return best

        bcrypt_calls.clear()
        unknown, known = timed("nobody", 5), timed("alice", 5)
        assert len(bcrypt_calls) == 10
        assert all(h.split(b"$")[2] == b"10" for h in bcrypt_calls)  # the dummy has the users' cost
        assert unknown > known * 0.3, (unknown, known)  # best of 5 each; loose for a busy machine


# --- 9: deletes are opt-in ---------------------------------------------------------------------------


def test_deletes_are_disabled_by_default(tmp_path: Path) -> None:
    assert build_config({}).delete_enabled is False
    with ServerThread({"storage": {"filesystem": {"rootdirectory": str(tmp_path)}}}) as reg:
        d, _ = push_image(reg, "app", "v1")
        blob = push_blob(reg, "app", os.urandom(10))
        for path in (f"/v2/app/manifests/{d}", f"/v2/app/blobs/{blob}"):
            r: Resp = reg.request("DELETE", path)
            assert r.status == 405 and r.codes == ["UNSUPPORTED"], (path, r.status, r.body)
            assert json.loads(r.body)["errors"][0]["message"] == "The operation is unsupported."  # distribution's
        assert reg.get(f"/v2/app/manifests/{d}").status == 200
        assert reg.get(f"/v2/app/blobs/{blob}").status == 200
