"""Challenges, token auth, Docker's config.json and credential helpers, endpoint resolution."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from strata.digest import Digest
from strata.distribution.auth import parse_challenges
from strata.distribution.client import RegistryClient
from strata.distribution.credentials import (
    DOCKER_HUB_KEY,
    CredentialHelperError,
    Credentials,
    erase_credentials,
    get_credentials,
    store_credentials,
)
from strata.distribution.hosts import DOCKER_HUB_HOST, HostsConfig, resolve_endpoints
from strata.errors import Unauthorized

from .faultserver import FaultRegistry


def test_parse_challenges() -> None:
    got = parse_challenges(
        ['Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
         'Basic realm="Registry Realm"']
    )
    assert [c.scheme for c in got] == ["bearer", "basic"]
    assert got[0].params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/ubuntu:pull",
    }
    assert got[1].params == {"realm": "Registry Realm"}
    two = parse_challenges(['Basic realm="a, b", Bearer realm="x",error="insufficient_scope"'])
    assert [(c.scheme, c.params.get("realm")) for c in two] == [("basic", "a, b"), ("bearer", "x")]


def test_bearer_token_flow_and_scope_cache(fault_registry: FaultRegistry) -> None:
    fault_registry.users["alice"] = "pw"
    fault_registry.bearer = True
    dg = fault_registry.add_blob(b"hello token")
    with RegistryClient(fault_registry.host, Credentials("alice", "pw"), config=HostsConfig(certs_dirs=())) as c:
        c.ping()
        for _ in range(3):
            assert c.open_blob("lib/x", Digest.parse(dg), 11).read() == b"hello token"
    scoped = [q for q in fault_registry.token_requests if q.get("scope")]
    assert len(scoped) == 1  # one token per scope set, then cached
    assert scoped[0] == {"service": "fault", "scope": "repository:lib/x:pull", "account": "alice"}
    bad = RegistryClient(fault_registry.host, Credentials("alice", "bad"), config=HostsConfig(certs_dirs=()))
    with bad, pytest.raises(Unauthorized):
        bad.ping()


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    return tmp_path / "cfg" / "config.json"


def test_config_json_round_trip(docker_config: Path) -> None:
    docker_config.parent.mkdir()
    docker_config.write_text(json.dumps({"auths": {}, "HttpHeaders": {"X": "y"}}))
    store_credentials("localhost:5000", Credentials("u", "p:w"))
    store_credentials("docker.io", Credentials("hub", "secret"))
    data = json.loads(docker_config.read_text())
    assert data["HttpHeaders"] == {"X": "y"}  # other settings survive
    assert base64.b64decode(data["auths"]["localhost:5000"]["auth"]) == b"u:p:w"
    assert DOCKER_HUB_KEY in data["auths"]
    assert stat.S_IMODE(docker_config.stat().st_mode) == 0o600
    assert get_credentials("localhost:5000") == Credentials("u", "p:w")
    assert get_credentials("index.docker.io") == Credentials("hub", "secret")
    assert not get_credentials("other:1")
    assert erase_credentials("localhost:5000")
    assert not get_credentials("localhost:5000")
    assert not erase_credentials("localhost:5000")


def test_keys_written_by_others_are_matched(docker_config: Path) -> None:
    docker_config.parent.mkdir()
    auth = base64.b64encode(b"a:b").decode()
    docker_config.write_text(json.dumps({"auths": {"https://reg.example:444/v2/": {"auth": auth}}}))
    assert get_credentials("reg.example:444") == Credentials("a", "b")


def test_credential_helper_protocol(docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real docker-credential-* program (a shell script keeping secrets in files) on PATH."""
    bindir, store = tmp_path / "bin", tmp_path / "secrets"
    bindir.mkdir()
    store.mkdir()
    helper = bindir / "docker-credential-files"
    helper.write_text(
        f"""#!/bin/sh
set -e
D={store}
case "$1" in
  store) cat > "$D/last.json"; url=$(sed 's/.*"ServerURL": *"\\([^"]*\\)".*/\\1/' "$D/last.json");
         cp "$D/last.json" "$D/$(echo "$url" | tr '/:' '__')" ;;
  get) read -r url || true; f="$D/$(echo "$url" | tr '/:' '__')";
       if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) read -r url || true; rm -f "$D/$(echo "$url" | tr '/:' '__')" ;;
esac
"""
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    docker_config.parent.mkdir()
    docker_config.write_text(json.dumps({"credsStore": "files"}))
    assert not get_credentials("localhost:5000")
    store_credentials("localhost:5000", Credentials("u", "s3cret"))
    data = json.loads(docker_config.read_text())
    assert data["auths"] == {"localhost:5000": {}}  # the secret is in the helper, not the file
    assert json.loads((store / "last.json").read_text()) == {"ServerURL": "localhost:5000", "Username": "u", "Secret": "s3cret"}
    assert get_credentials("localhost:5000") == Credentials("u", "s3cret")
    erase_credentials("localhost:5000")
    assert not get_credentials("localhost:5000")
    # credHelpers picks a helper per registry, ahead of credsStore
    docker_config.write_text(json.dumps({"credsStore": "missing", "credHelpers": {"reg.example": "files"}}))
    store_credentials("reg.example", Credentials("x", "y"))
    assert get_credentials("reg.example") == Credentials("x", "y")


def test_failing_credential_helper_in_dockers_words(
    docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-broken"
    helper.write_text('#!/bin/sh\n[ "$1" = get ] && echo "[1]" && exit 0\necho boom; exit 3\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    docker_config.parent.mkdir()
    docker_config.write_text(json.dumps({"credsStore": "broken"}))
    with pytest.raises(CredentialHelperError, match=r"^error storing credentials - err: exit status 3, out: `boom`$"):
        store_credentials("localhost:5000", Credentials("u", "p"))
    with pytest.raises(CredentialHelperError, match=r"^error erasing credentials - err: exit status 3"):
        erase_credentials("localhost:5000")
    with pytest.raises(CredentialHelperError, match="invalid helper output"):  # JSON, but not an object
        get_credentials("localhost:5000")


def test_endpoint_resolution(tmp_path: Path) -> None:
    hub = resolve_endpoints("docker.io", HostsConfig(mirrors=("https://mirror.example",), certs_dirs=()))
    assert [e.netloc for e in hub] == ["mirror.example", DOCKER_HUB_HOST]
    assert all(e.scheme == "https" and e.verify for e in hub)
    assert [e.netloc for e in resolve_endpoints("docker.io", HostsConfig(mirrors=("m.example",)), for_push=True)] == [
        DOCKER_HUB_HOST
    ]
    local = resolve_endpoints("localhost:5000", HostsConfig(certs_dirs=()))
    # loopback: verified TLS first, plain HTTP only for a server that does not speak TLS
    assert [(e.scheme, e.verify) for e in local] == [("https", True), ("http", False)]
    listed = resolve_endpoints("localhost:5000", HostsConfig(insecure_registries=("localhost:5000",), certs_dirs=()))
    assert [(e.scheme, e.verify) for e in listed] == [("https", False), ("http", False)]
    assert [e.scheme for e in resolve_endpoints("127.0.0.2:80", HostsConfig())] == ["https", "http"]
    insecure = HostsConfig(insecure_registries=("10.0.0.0/8", "reg.lan:5000"), certs_dirs=())
    assert [e.scheme for e in resolve_endpoints("10.1.2.3:5000", insecure)] == ["https", "http"]
    assert [e.scheme for e in resolve_endpoints("reg.lan:5000", insecure)] == ["https", "http"]
    assert [e.scheme for e in resolve_endpoints("reg.example", insecure)] == ["https"]


def test_hosts_config_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "strata.json"
    cfg.write_text(json.dumps({"insecure-registries": ["reg.lan:5000"], "registry-mirrors": ["https://m.example"]}))
    monkeypatch.setenv("STRATA_CONFIG", str(cfg))
    loaded = HostsConfig.load()
    assert loaded.insecure_registries == ("reg.lan:5000",)
    assert loaded.mirrors == ("https://m.example",)
