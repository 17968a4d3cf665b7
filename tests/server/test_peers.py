"""Real clients against strata's registry: skopeo, Docker 20.10 and podman; plain, TLS+htpasswd, token."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from peers import Dockerd, Podman, Skopeo, make_ca
from server.helpers import ServerProcess
from server.ocilayout import make_oci_layout
from strata.server.auth.htpasswd import add_user

USER, PASSWORD = "alice", "s3cret-pw"


def _start(tmp: Path, config: dict[str, object] | None = None, ca: Path | None = None) -> ServerProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    cfg_path = None
    if config is not None:
        cfg_path = tmp / "config.yml"
        cfg_path.write_text(yaml.safe_dump(config))
    return ServerProcess(tmp / "root", cfg_path, tls_ca=ca)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with _start(tmp_path_factory.mktemp("plain")) as s:
        yield s


@pytest.fixture(scope="module")
def tls_htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    tmp = tmp_path_factory.mktemp("tls")
    certs = make_ca(tmp / "certs")
    add_user(str(tmp / "htpasswd"), USER, PASSWORD, create=True)
    cfg = {"version": 0.1, "http": {"tls": {"certificate": str(certs.cert), "key": str(certs.key)}},
           "auth": {"htpasswd": {"realm": "strata", "path": str(tmp / "htpasswd")}}}
    cert_dir = tmp / "cert-dir"
    cert_dir.mkdir()
    (cert_dir / "ca.crt").write_bytes(certs.ca.read_bytes())
    with _start(tmp, cfg, ca=certs.ca) as s:
        yield s, cert_dir


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("token")
    add_user(str(tmp / "htpasswd"), USER, PASSWORD, create=True)
    add_user(str(tmp / "htpasswd"), "bob", "bob-pw")
    (tmp / "access.yml").write_text(yaml.safe_dump([
        {"account": USER, "name": "*", "actions": ["pull", "push", "delete"]},
        {"account": "bob", "name": "*", "actions": ["pull"]},
    ]))
    cfg = {"auth": {"token": {"service": "strata-test", "issuer": "strata-test-issuer",
                              "htpasswd": str(tmp / "htpasswd"), "accessfile": str(tmp / "access.yml"),
                              "signingkey": str(tmp / "signing.pem"), "anonymouspull": True}}}
    with _start(tmp, cfg) as s:
        yield s


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Path:
    root = tmp_path_factory.mktemp("layout") / "oci"
    make_oci_layout(root, [busybox_tar])
    return root


def _manifest_digest(s: ServerProcess, repo: str, tag: str, auth: dict[str, str] | None = None) -> str | None:
    r = s.request("HEAD", f"/v2/{repo}/manifests/{tag}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        **(auth or {})})
    return r.header("Docker-Content-Digest")


def test_skopeo_copy_oci_to_registry_and_back(skopeo: Skopeo, plain: ServerProcess, layout: Path, tmp_path: Path) -> None:
    dest = f"docker://{plain.url}/skopeo/busybox:1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", dest)
    assert plain.get("/v2/skopeo/busybox/tags/list").json()["tags"] == ["1"]
    out = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", dest, f"oci:{out}:x")
    idx = json.loads((out / "index.json").read_text())
    src_idx = json.loads((layout / "index.json").read_text())
    assert idx["manifests"][0]["digest"] == src_idx["manifests"][0]["digest"]
    # docker-archive out and back in under another name
    skopeo("copy", "--src-tls-verify=false", dest, f"docker-archive:{tmp_path / 'a.tar'}:skopeo/busybox:1")
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{tmp_path / 'a.tar'}", f"docker://{plain.url}/skopeo/fromarchive:v")
    insp = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{plain.url}/skopeo/fromarchive:v").stdout)
    assert insp["Name"].endswith("skopeo/fromarchive")


def test_skopeo_registry_to_registry_with_distribution(
    skopeo: Skopeo, plain: ServerProcess, layout: Path, distribution_registry: object
) -> None:
    dist = distribution_registry.host  # type: ignore[attr-defined]
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{plain.url}/r2r/src:1")
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
           f"docker://{plain.url}/r2r/src:1", f"docker://{dist}/r2r/copy:1")
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
           f"docker://{dist}/r2r/copy:1", f"docker://{plain.url}/r2r/back:1")
    assert _manifest_digest(plain, "r2r/src", "1") == _manifest_digest(plain, "r2r/back", "1")


def test_skopeo_tls_htpasswd(skopeo: Skopeo, tls_htpasswd: tuple[ServerProcess, Path], layout: Path) -> None:
    s, cert_dir = tls_htpasswd
    dest = f"docker://{s.url}/secure/busybox:1"
    r = skopeo("copy", "--dest-cert-dir", str(cert_dir), f"oci:{layout}:latest", dest, check=False)
    assert r.returncode != 0 and "unauthorized" in r.stderr.lower()
    skopeo("login", "--cert-dir", str(cert_dir), "-u", USER, "--password-stdin", s.url, input=PASSWORD)
    skopeo("copy", "--dest-cert-dir", str(cert_dir), f"oci:{layout}:latest", dest)
    insp = json.loads(skopeo("inspect", "--cert-dir", str(cert_dir), dest).stdout)
    assert insp["Architecture"] == "amd64"


def test_skopeo_token_auth(skopeo: Skopeo, token: ServerProcess, layout: Path) -> None:
    dest = f"docker://{token.url}/tok/busybox:1"
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:bob-pw", f"oci:{layout}:latest", dest, check=False)
    assert r.returncode != 0
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"{USER}:{PASSWORD}", f"oci:{layout}:latest", dest)
    # anonymous pull is allowed by the config
    insp = json.loads(skopeo("inspect", "--tls-verify=false", "--no-creds", dest).stdout)
    assert insp["Os"] == "linux"


def _image_id(dockerd: Dockerd, ref: str) -> str:
    return dockerd.run("inspect", "--format", "{{.Id}}", ref).stdout.strip()


def test_docker_push_pull_search(dockerd: Dockerd, docker_busybox: str, plain: ServerProcess) -> None:
    ref = f"{plain.url}/alicek107/my-image-name:0.0"
    dockerd.run("tag", docker_busybox, ref)
    before = _image_id(dockerd, ref)
    out = dockerd.run("push", ref).stdout
    assert "digest: sha256:" in out
    out2 = dockerd.run("push", ref).stdout
    assert "Layer already exists" in out2
    dockerd.run("rmi", ref)
    dockerd.run("rmi", docker_busybox)
    try:
        dockerd.run("pull", ref)
        assert _image_id(dockerd, ref) == before
    finally:
        dockerd.run("tag", before, docker_busybox, check=False)
    res = dockerd.run("pull", f"{plain.url}/alicek107/my-image-name:nope", check=False)
    assert res.returncode != 0 and "manifest unknown" in res.stderr
    search = dockerd.run("search", f"{plain.url}/my-image").stdout
    assert "alicek107/my-image-name" in search


def test_docker_login_tls_htpasswd(dockerd: Dockerd, docker_busybox: str, tls_htpasswd: tuple[ServerProcess, Path]) -> None:
    s, _ = tls_htpasswd
    ref = f"{s.url}/secure/docker:1"
    dockerd.run("tag", docker_busybox, ref)
    res = dockerd.run("push", ref, check=False)
    assert res.returncode != 0
    bad = dockerd.run("login", "-u", USER, "--password-stdin", s.url, input="wrong", check=False)
    assert bad.returncode != 0
    dockerd.run("login", "-u", USER, "--password-stdin", s.url, input=PASSWORD)
    try:
        dockerd.run("push", ref)
        before = _image_id(dockerd, ref)
        dockerd.run("rmi", ref)
        dockerd.run("pull", ref)
        assert _image_id(dockerd, ref) == before
        assert "secure/docker" in dockerd.run("search", f"{s.url}/docker").stdout
    finally:
        dockerd.run("logout", s.url, check=False)
        dockerd.run("rmi", ref, check=False)


def test_docker_token_auth(dockerd: Dockerd, docker_busybox: str, token: ServerProcess) -> None:
    ref = f"{token.url}/tok/docker:1"
    dockerd.run("tag", docker_busybox, ref)
    dockerd.run("login", "-u", USER, "--password-stdin", token.url, input=PASSWORD)
    try:
        # the token server offered a refresh token: Docker keeps it instead of the password ...
        saved = json.loads((Path(dockerd.env["DOCKER_CONFIG"]) / "config.json").read_text())["auths"][token.url]
        assert saved.get("identitytoken") and base64.b64decode(saved.get("auth", "")) == f"{USER}:".encode()
        posts_before = token.log.read_text().count('"POST /auth/token')
        dockerd.run("push", ref)
        before = _image_id(dockerd, ref)
        dockerd.run("rmi", ref)
        dockerd.run("pull", ref)
        assert _image_id(dockerd, ref) == before
        # ... and trades it for access tokens with the OAuth2 form (grant_type=refresh_token)
        deadline = time.monotonic() + 30  # logged once answered: poll (late on a loaded machine)
        while token.log.read_text().count('"POST /auth/token HTTP/1.1" 200') <= posts_before:
            assert time.monotonic() < deadline, token.log.read_text()[-2000:]
            time.sleep(0.05)
    finally:
        dockerd.run("logout", token.url, check=False)
    dockerd.run("login", "-u", "bob", "--password-stdin", token.url, input="bob-pw")
    try:
        res = dockerd.run("push", f"{token.url}/tok/docker:1", check=False)
        assert res.returncode != 0 and ("denied" in res.stderr or "unauthorized" in res.stderr)
    finally:
        dockerd.run("logout", token.url, check=False)
        dockerd.run("rmi", ref, check=False)


def test_podman_push_pull(podman: Podman, plain: ServerProcess, tls_htpasswd: tuple[ServerProcess, Path],
                          layout: Path) -> None:
    podman("pull", f"oci:{layout}:latest")
    images = podman("images", "--format", "{{.ID}}").stdout.split()
    assert images
    ref = f"{plain.url}/podman/busybox:1"
    podman("tag", images[0], ref)
    podman("push", "--tls-verify=false", ref)
    podman("rmi", "-f", ref)
    podman("pull", "--tls-verify=false", ref)
    s, cert_dir = tls_htpasswd
    sref = f"{s.url}/podman/secure:1"
    podman("tag", images[0], sref)
    podman("login", "--cert-dir", str(cert_dir), "-u", USER, "--password-stdin", s.url, input=PASSWORD)
    podman("push", "--cert-dir", str(cert_dir), sref)
    podman("rmi", "-f", sref)
    podman("pull", "--cert-dir", str(cert_dir), sref)


def test_podman_token_auth(podman: Podman, token: ServerProcess, layout: Path) -> None:
    podman("pull", f"oci:{layout}:latest")
    image = podman("images", "--format", "{{.ID}}").stdout.split()[0]
    ref = f"{token.url}/tok/podman:1"
    podman("tag", image, ref)
    podman("login", "--tls-verify=false", "-u", "bob", "--password-stdin", token.url, input="bob-pw")
    res = podman("push", "--tls-verify=false", ref, check=False)
    assert res.returncode != 0
    podman("login", "--tls-verify=false", "-u", USER, "--password-stdin", token.url, input=PASSWORD)
    podman("push", "--tls-verify=false", ref)
    podman("rmi", "-f", ref)
    podman("logout", token.url)
    podman("pull", "--tls-verify=false", ref)  # anonymous pull is allowed
