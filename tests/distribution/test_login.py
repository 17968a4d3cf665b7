"""``strata login`` as a command: the unencrypted-password warning on stderr (as Docker 20.10 prints it),
identity tokens kept instead of passwords when the token server hands out refresh tokens, and those
tokens used afterwards (OAuth2 ``grant_type=refresh_token``)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from .conftest import StrataRun, config_json, gz_layer
from .faultserver import FaultRegistry

WARNING = (
    "WARNING! Your password will be stored unencrypted in {path}.\n"
    "Configure a credential helper to remove this warning. See\n"
    "https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n"
    "\n"
)


def _config(strata: StrataRun) -> dict[str, object]:
    data: dict[str, object] = json.loads((Path(strata.env["DOCKER_CONFIG"]) / "config.json").read_text())
    return data


def test_password_login_warns_on_stderr(fault_registry: FaultRegistry, strata: StrataRun) -> None:
    fault_registry.users["bob"] = "pw-bob"
    res = strata("login", "-u", "bob", "--password-stdin", fault_registry.host, input="pw-bob\n")
    assert res.returncode == 0, res.stderr
    path = Path(strata.env["DOCKER_CONFIG"]) / "config.json"
    assert res.stdout == "Login Succeeded\n"
    assert res.stderr == WARNING.format(path=path)
    with_p = strata("login", "-u", "bob", "-p", "pw-bob", fault_registry.host)
    assert with_p.stderr == (
        "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n" + WARNING.format(path=path)
    )
    entry = _config(strata)["auths"][fault_registry.host]  # type: ignore[index]
    assert entry == {"auth": base64.b64encode(b"bob:pw-bob").decode()}


def test_identity_token_is_stored_and_used(fault_registry: FaultRegistry, strata: StrataRun) -> None:
    reg = fault_registry
    reg.users["alice"] = "pw-alice"
    reg.bearer = True
    reg.refresh_tokens = True
    layer, diff_id = gz_layer({"etc/hello": b"identity token"})
    reg.manifest_for("x/img", "1", config_json([diff_id]), [layer])

    res = strata("login", "-u", "alice", "--password-stdin", reg.host, input="pw-alice")
    assert res.returncode == 0, res.stderr
    assert (res.stdout, res.stderr) == ("Login Succeeded\n", "")  # no password stored: no warning (as Docker)
    login_req = [q for q in reg.token_requests if q.get("account") == "alice"]
    assert login_req and login_req[0].get("offline_token") == "true"
    entry = _config(strata)["auths"][reg.host]  # type: ignore[index]
    assert entry == {"identitytoken": "rt-alice", "auth": base64.b64encode(b"alice:").decode()}

    reg.token_requests.clear()
    pulled = strata("pull", f"{reg.host}/x/img:1")
    assert pulled.returncode == 0, pulled.stderr
    posts = [q for q in reg.token_requests if q.get("method") == "POST"]
    assert posts and all(q["grant_type"] == "refresh_token" and q["refresh_token"] == "rt-alice" for q in posts)
    assert "repository:x/img:pull" in posts[0]["scope"].split(" ")
    assert not [q for q in reg.token_requests if q.get("method") != "POST"]  # the password is never sent again

    # a revoked identity token: Docker's words, nothing pulled
    cfg = _config(strata)
    cfg["auths"][reg.host]["identitytoken"] = "rt-mallory"  # type: ignore[index]
    (Path(strata.env["DOCKER_CONFIG"]) / "config.json").write_text(json.dumps(cfg))
    strata.env["STRATA_ROOT"] = str(strata.root.parent / "other-root")
    denied = strata("pull", f"{reg.host}/x/img:1")
    assert denied.returncode == 1
    assert denied.stderr.strip().endswith("unauthorized: invalid refresh token"), denied.stderr
