"""strata's registry client against the real peers: CNCF distribution (htpasswd over TLS), Docker
20.10 and skopeo. Logins are shared through one Docker config.json."""

from __future__ import annotations

import functools
import gzip
import json
import re
import shutil
from pathlib import Path

import pytest

from peers import Dockerd, Registry, Skopeo, busybox_rootfs_tar
from strata.copier import copy_image
from strata.digest import digest_bytes, digest_file
from strata.image import mediatypes as mt
from strata.image.api import BlobLayer, SimpleImage
from strata.image.spec import Descriptor, ImageConfig
from strata.reference import parse_normalized_named
from strata.transports.store import StoreSink

from .conftest import StrataRun

pytestmark = pytest.mark.peers


def _busybox_image(tmp: Path, extra: bytes = b"") -> SimpleImage:
    """A runnable busybox image built from files: one gzip layer (+ one small layer)."""
    tmp.mkdir(parents=True, exist_ok=True)
    tar = busybox_rootfs_tar(tmp / "rootfs.tar", extra_files={"etc/motd": b"strata " + extra})
    gz = tmp / "rootfs.tar.gz"
    with open(tar, "rb") as src, gzip.GzipFile(gz, "wb", mtime=0) as dst:
        shutil.copyfileobj(src, dst)
    diff_id, _ = digest_file(str(tar))
    blob, size = digest_file(str(gz))
    layer = BlobLayer(Descriptor(mt.DOCKER_LAYER, blob, size), functools.partial(gz.open, "rb"), diff_id)
    config = ImageConfig.from_dict(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [str(diff_id)]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "busybox"}],
        }
    )
    return SimpleImage(config, [layer])


def _store_image(strata: StrataRun, image: SimpleImage, name: str) -> str:
    from strata.engine import Engine

    engine = Engine.open(strata.root)
    try:
        result = copy_image(image, StoreSink(engine), [parse_normalized_named(name)])
    finally:
        engine.close()
    return str(result.image_id)


@pytest.fixture
def shared_login(strata: StrataRun, dockerd: Dockerd) -> StrataRun:
    """strata and docker on one client config directory."""
    cfg = Path(dockerd.env["DOCKER_CONFIG"])
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.json").unlink(missing_ok=True)
    strata.env["DOCKER_CONFIG"] = str(cfg)
    return strata


def _trust(strata: StrataRun, reg: Registry) -> None:
    """Put the registry's CA in a certs.d directory strata reads (TLS is verified, also on loopback)."""
    assert reg.ca_path is not None
    certs = strata.root.parent / "certs.d"
    (certs / reg.host).mkdir(parents=True, exist_ok=True)
    shutil.copy(reg.ca_path, certs / reg.host / "ca.crt")
    strata.env["STRATA_CERTS_DIRS"] = str(certs)


def _login(strata: StrataRun, reg: Registry) -> None:
    res = strata("login", "-u", reg.username or "", "--password-stdin", reg.host, input=reg.password)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "Login Succeeded\n"
    assert res.stderr.startswith("WARNING! Your password will be stored unencrypted in ")


def test_login_logout_and_bad_password(strata: StrataRun, distribution_registry_tls: Registry) -> None:
    reg = distribution_registry_tls
    _trust(strata, reg)
    bad = strata("login", "-u", reg.username or "", "-p", "wrong", reg.host)
    assert bad.returncode == 1
    assert bad.stderr.strip().endswith("unauthorized: authentication required"), bad.stderr
    _login(strata, reg)
    cfg = json.loads((Path(strata.env["DOCKER_CONFIG"]) / "config.json").read_text())
    assert reg.host in cfg["auths"] and cfg["auths"][reg.host]["auth"]
    out = strata("logout", reg.host, check=True)
    assert out.stdout.strip() == f"Removing login credentials for {reg.host}"
    out = strata("logout", reg.host, check=True)
    assert out.stdout.strip() == f"Not logged in to {reg.host}"
    res = strata("pull", f"{reg.host}/nothing:1")
    assert res.returncode == 1 and "unauthorized: authentication required" in res.stderr


def test_strata_push_docker_pull_and_run(
    shared_login: StrataRun, tmp_path: Path, dockerd: Dockerd, distribution_registry_tls: Registry
) -> None:
    strata, reg = shared_login, distribution_registry_tls
    _trust(strata, reg)
    _login(strata, reg)  # docker pull below uses the login strata wrote
    name = f"{reg.host}/alicek107/my-image-name:0.0"
    image_id = _store_image(strata, _busybox_image(tmp_path / "img"), name)
    res = strata("push", name, check=True)
    lines = res.stdout.strip().splitlines()
    assert lines[0] == f"The push refers to repository [{reg.host}/alicek107/my-image-name]"
    assert re.fullmatch(r"[0-9a-f]{12}: Preparing", lines[1])
    assert re.fullmatch(r"[0-9a-f]{12}: Pushed", lines[2])
    m = re.fullmatch(r"0\.0: digest: (sha256:[0-9a-f]{64}) size: (\d+)", lines[-1])
    assert m, lines
    again = strata("push", name, check=True).stdout.strip().splitlines()
    assert [ln.split(": ", 1)[1] for ln in again[1:-1]] == ["Preparing", "Layer already exists"]
    assert again[-1] == lines[-1]

    dockerd.run("pull", name)
    got = dockerd.run("inspect", "--format", "{{.Id}}", name).stdout.strip()
    assert got == image_id
    digests = dockerd.run("inspect", "--format", "{{json .RepoDigests}}", name).stdout
    assert m.group(1) in digests
    out = dockerd.run("run", "--rm", "--network", "none", name, "cat", "/etc/motd")
    assert out.stdout.startswith("strata")


def test_docker_push_strata_pull_same_id_and_repush_same_digest(
    shared_login: StrataRun, dockerd: Dockerd, docker_busybox: str, distribution_registry_tls: Registry
) -> None:
    strata, reg = shared_login, distribution_registry_tls
    _trust(strata, reg)
    login = dockerd.run("login", "-u", reg.username or "", "--password-stdin", reg.host, input=reg.password)
    assert "Login Succeeded" in login.stdout  # strata below uses the login docker wrote
    # Docker 20.10 prints the unencrypted-password warning on stderr: strata prints the same on the same streams
    ours = strata("login", "-u", reg.username or "", "--password-stdin", reg.host, input=reg.password)
    assert login.stdout == ours.stdout == "Login Succeeded\n"
    assert login.stderr.replace(dockerd.env["DOCKER_CONFIG"], "CFG") == ours.stderr.replace(strata.env["DOCKER_CONFIG"], "CFG")
    name = f"{reg.host}/fromdocker/busybox:1"
    dockerd.run("tag", docker_busybox, name)
    pushed = dockerd.run("push", name).stdout
    docker_digest = re.search(r"digest: (sha256:[0-9a-f]{64}) size", pushed)
    assert docker_digest
    docker_id = dockerd.run("inspect", "--format", "{{.Id}}", name).stdout.strip()

    res = strata("pull", name, check=True)
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "1: Pulling from fromdocker/busybox"
    assert f"Digest: {docker_digest.group(1)}" in lines
    assert f"Status: Downloaded newer image for {name}" in lines
    assert lines[-1] == name
    ids = strata("images", "-q", "--no-trunc", name, check=True).stdout.split()
    assert ids == [docker_id]
    again = strata("pull", name, check=True).stdout
    assert f"Status: Image is up to date for {name}" in again
    assert again.splitlines()[:2] == ["1: Pulling from fromdocker/busybox", f"Digest: {docker_digest.group(1)}"]

    # a pulled image pushed elsewhere is the same blobs, hence the same manifest digest
    other = f"{reg.host}/copy/busybox:1"
    strata("tag", name, other, check=True)
    out = strata("push", other, check=True).stdout
    assert out.strip().splitlines()[-1].startswith(f"1: digest: {docker_digest.group(1)} size:")
    assert "Mounted from fromdocker/busybox" in out


def test_skopeo_copies_what_strata_pushed(
    strata: StrataRun, tmp_path: Path, skopeo: Skopeo, distribution_registry_tls: Registry
) -> None:
    reg = distribution_registry_tls
    _trust(strata, reg)
    _login(strata, reg)
    name = f"{reg.host}/forskopeo/img:2"
    image_id = _store_image(strata, _busybox_image(tmp_path / "img", b"skopeo"), name)
    strata("push", name, check=True)
    creds = f"{reg.username}:{reg.password}"
    dest = tmp_path / "dir"
    skopeo("copy", "--src-creds", creds, "--src-cert-dir", str(reg.cert_dir), f"docker://{name}", f"dir:{dest}")
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["config"]["digest"] == image_id
    archive = tmp_path / "img.tar"
    skopeo("copy", "--src-creds", creds, "--src-cert-dir", str(reg.cert_dir), f"docker://{name}",
           f"docker-archive:{archive}:{name}")  # fmt: skip

    # and strata copies that archive back into another repository, the image ID intact
    res = strata("copy", f"docker-archive:{archive}", f"docker://{reg.host}/back/img:3")
    assert res.returncode == 0, res.stderr
    inspect = strata("manifest", "inspect", f"{reg.host}/back/img:3", check=True)
    assert json.loads(inspect.stdout)["config"]["digest"] == image_id


def test_search_falls_back_to_catalog(strata: StrataRun, tmp_path: Path, distribution_registry: Registry) -> None:
    reg = distribution_registry
    name = f"{reg.host}/alicek107/my-image-name:0.0"
    _store_image(strata, _busybox_image(tmp_path / "img", b"search"), name)
    strata("push", name, check=True)
    res = strata("search", f"{reg.host}/my-image", check=True)
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    assert lines[1].split()[0] == "alicek107/my-image-name"  # as the registry names it (Docker's way)
    fmt = strata("search", "--format", "{{.Name}}", f"{reg.host}/my-image", check=True)
    assert fmt.stdout == "alicek107/my-image-name\n"


def test_uncompressed_layers_are_gzipped_and_remembered(
    strata: StrataRun, tmp_path: Path, distribution_registry: Registry
) -> None:
    from .conftest import make_image

    reg = distribution_registry
    name = f"{reg.host}/plain/img:1"
    image = make_image(tmp_path / "plain", [{"bin/a": b"x" * 50_000}, {"b": b"y" * 10_000}], gz=False)
    _store_image(strata, image, name)
    first = strata("push", name, check=True).stdout
    second = strata("push", name, check=True).stdout
    assert second.count("Layer already exists") == 2, second
    assert first.strip().splitlines()[-1] == second.strip().splitlines()[-1]
    manifest = json.loads(strata("manifest", "inspect", name, check=True).stdout)
    assert [lay["mediaType"] for lay in manifest["layers"]] == [mt.DOCKER_LAYER] * 2
    blob = digest_bytes(b"")  # a digest never confused with the layers
    assert all(lay["digest"] != str(blob) for lay in manifest["layers"])


def test_upload_modes_against_distribution(distribution_registry: Registry) -> None:
    """Monolithic PUT, one streamed PATCH, several Content-Range PATCHes, and digest-later streams."""
    import os

    from strata.distribution.client import RegistryClient
    from strata.distribution.hosts import HostsConfig

    reg = distribution_registry
    with RegistryClient(reg.host, config=HostsConfig(certs_dirs=())) as c:
        c.want_push("modes/x")
        for size, chunk_size in ((1000, 0), (3 << 20, 0), (3 << 20, 1 << 20), ((3 << 20) + 7, 1 << 20)):
            data = os.urandom(size)
            dg = digest_bytes(data)
            c.upload_blob("modes/x", dg, size, lambda data=data: [data[i : i + 65536] for i in range(0, len(data), 65536)],
                          chunk_size=chunk_size)  # fmt: skip
            assert c.head_blob("modes/x", dg) == size
            assert c.open_blob("modes/x", dg, size).read() == data
        streamed, n = c.upload_stream("modes/x", iter([b"abc" * 100_000] * 5))
        assert n == 1_500_000 and streamed == digest_bytes(b"abc" * 500_000)
        assert c.mount_blob("modes/y", streamed, "modes/x") is None
        assert c.head_blob("modes/y", streamed) == n
