"""A registry with the web UI, token auth (built-in token server, htpasswd users, access rules) and
content pushed through the real API with real tokens; a cookie-keeping client for the UI."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

from server.helpers import Client, Resp, push_blob, random_blob, sha
from strata.server.auth.htpasswd import add_user

__all__ = ["UIClient", "auth_config", "bearer_client", "push_index", "push_labelled_image", "push_referrer"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def auth_config(tmp: Path, *, delete: bool = True, ui: dict[str, Any] | None = None) -> dict[str, Any]:
    """alice may do anything anywhere; bob may pull and push but never delete; carol may pull only team/*."""
    htp = tmp / "htpasswd"
    add_user(str(htp), "alice", "pw-alice", create=True)
    add_user(str(htp), "bob", "pw-bob")
    add_user(str(htp), "carol", "pw-carol")
    access = tmp / "access.yml"
    access.write_text(yaml.safe_dump([
        {"account": "alice", "name": "*", "actions": ["*"]},
        {"account": "bob", "name": "*", "actions": ["pull", "push"]},
        {"account": "carol", "name": "team/*", "actions": ["pull"]},
    ]))  # fmt: skip
    return {
        "storage": {"filesystem": {"rootdirectory": str(tmp / "reg")}, "delete": {"enabled": delete}},
        "auth": {"token": {"service": "svc", "issuer": "iss", "htpasswd": str(htp), "accessfile": str(access),
                           "signingkey": str(tmp / "key.pem")}},
        "ui": ui or {"enabled": True, "path": "/ui"},
    }


def bearer_client(c: Client, user: str, password: str, repo: str) -> Client:
    """A client carrying a token for pull,push on ``repo`` from the built-in token server."""
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    q = urlencode({"service": "svc", "scope": f"repository:{repo}:pull,push"})
    r = c.get(f"/auth/token?{q}", headers={"Authorization": f"Basic {basic}"})
    assert r.status == 200, r.body
    return Client(c.host, c.port, c.ssl_context, {"Authorization": f"Bearer {r.json()['token']}"})


def push_labelled_image(c: Client, repo: str, tag: str, config: dict[str, Any], arch: str = "amd64") -> tuple[str, bytes]:
    layers = [random_blob(2000), random_blob(3000)]
    cfg = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, **config}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": push_blob(c, repo, cfg),
                   "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": push_blob(c, repo, b),
                    "size": len(b)} for b in layers],
    }).encode()  # fmt: skip
    r = c.request("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201, r.body
    return sha(manifest), manifest


def push_index(c: Client, repo: str, tag: str, children: list[tuple[str, bytes, str]]) -> str:
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": len(body),
         "platform": {"os": "linux", "architecture": arch}} for d, body, arch in children]}).encode()  # fmt: skip
    r = c.request("PUT", f"/v2/{repo}/manifests/{tag}", body=index, headers={"Content-Type": OCI_INDEX})
    assert r.status == 201, r.body
    return sha(index)


def push_referrer(c: Client, repo: str, subject: tuple[str, bytes], artifact_type: str) -> str:
    empty = push_blob(c, repo, b"{}")
    sig = random_blob(100)
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": push_blob(c, repo, sig), "size": len(sig)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": len(subject[1])},
    }).encode()  # fmt: skip
    r = c.request("PUT", f"/v2/{repo}/manifests/{sha(body)}", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201, r.body
    return sha(body)


@dataclass
class UIClient:
    """A browser-like client: keeps the UI's cookie, reads form tokens from pages."""

    c: Client
    cookies: dict[str, str] = field(default_factory=dict)

    def send(self, method: str, path: str, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> Resp:
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        r = self.c.request(method, path, body=body, headers=h)
        cookie = r.header("Set-Cookie")
        if cookie:
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return r

    def get(self, path: str) -> Resp:
        return self.send("GET", path)

    def csrf(self, path: str = "/ui/") -> str:
        m = re.search(r'name="csrf" value="([0-9a-f]+)"', self.get(path).body.decode())
        assert m, "no form token on the page"
        return m.group(1)

    def login(self, user: str, password: str) -> Resp:
        token = self.csrf("/ui/login")
        return self.send("POST", "/ui/login", {"csrf": token, "username": user, "password": password})
