"""The client against strata's own registry with token auth (the Docker token spec end to end)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from server.helpers import ServerThread
from strata.copier import copy_image
from strata.reference import parse_normalized_named
from strata.server.auth.htpasswd import add_user
from strata.transports.store import StoreSink

from .conftest import StrataRun, make_image


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[ServerThread]:
    htp = tmp_path / "htpasswd"
    add_user(str(htp), "alice", "pw-alice", create=True)
    add_user(str(htp), "bob", "pw-bob")
    access = tmp_path / "access.yml"
    access.write_text(yaml.safe_dump([
        {"account": "alice", "name": "*", "actions": ["*"]},
        {"account": "bob", "name": "bob/*", "actions": ["pull", "push"]},
    ]))  # fmt: skip
    raw = {"storage": {"inmemory": {}}, "auth": {"token": {
        "service": "svc", "issuer": "iss", "htpasswd": str(htp), "accessfile": str(access),
        "signingkey": str(tmp_path / "key.pem")}}}  # fmt: skip
    reg = ServerThread(raw)
    try:
        yield reg
    finally:
        reg.close()


def _store(strata: StrataRun, tmp_path: Path, name: str) -> str:
    from strata.engine import Engine

    image = make_image(tmp_path / "img", [{"bin/a": b"a" * 70_000}, {"etc/b": b"b" * 5_000}])
    engine = Engine.open(strata.root)
    try:
        return str(copy_image(image, StoreSink(engine), [parse_normalized_named(name)]).image_id)
    finally:
        engine.close()


def test_token_auth_push_pull(strata: StrataRun, tmp_path: Path, token_registry: ServerThread) -> None:
    host = token_registry.url
    name = f"{host}/alice/app:1"
    image_id = _store(strata, tmp_path, name)
    denied = strata("push", name)
    assert denied.returncode == 1 and "unauthorized" in denied.stderr.lower()

    bad = strata("login", "-u", "alice", "--password-stdin", host, input="nope")
    assert bad.returncode == 1 and "unauthorized" in bad.stderr.lower()
    ok = strata("login", "-u", "alice", "--password-stdin", host, input="pw-alice")
    assert ok.returncode == 0 and ok.stdout.strip() == "Login Succeeded", ok.stderr

    first = strata("push", name, check=True).stdout
    assert first.count(": Pushed") == 2
    again = strata("push", name, check=True).stdout
    assert again.count("Layer already exists") == 2
    assert first.strip().splitlines()[-1] == again.strip().splitlines()[-1]

    # cross-repository mount: alice may pull from alice/app while pushing alice/other
    other = f"{host}/alice/other:1"
    strata("tag", name, other, check=True)
    mounted = strata("push", other, check=True).stdout
    assert mounted.count("Mounted from alice/app") == 2, mounted

    strata.env["STRATA_ROOT"] = str(tmp_path / "second-store")
    pulled = strata("pull", name, check=True)
    assert pulled.stdout.strip().splitlines()[-1] == name
    ids = strata("images", "-q", "--no-trunc", check=True).stdout.split()
    assert ids == [image_id]

    # bob's token carries no push rights on alice/*
    strata("login", "-u", "bob", "--password-stdin", host, input="pw-bob", check=True)
    strata.env["STRATA_ROOT"] = str(strata.root)
    res = strata("push", f"{host}/alice/app:1")
    assert res.returncode == 1
    assert "denied" in res.stderr.lower() or "unauthorized" in res.stderr.lower()
