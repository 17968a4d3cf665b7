"""TLS is verified, also on loopback: an untrusted certificate is refused with Go's x509 words, a CA in a
certs.d directory makes it work, ``insecure-registries`` turns verification off, and client certificates
(``client.cert``/``client.key``) are presented to a registry that requires them."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.helpers import ServerThread
from strata.copier import copy_image
from strata.distribution.client import RegistryClient
from strata.distribution.hosts import HostsConfig
from strata.errors import TransportError
from strata.transports.store import StoreSink

from .conftest import StrataRun, make_image
from .tlscerts import CA, certs_d


@pytest.fixture
def pki(tmp_path: Path) -> CA:
    return CA(tmp_path / "pki")


@pytest.fixture
def tls_registry(pki: CA) -> Iterator[ServerThread]:
    cert, key = pki.issue("server", ["127.0.0.1", "localhost"])
    reg = ServerThread({"storage": {"inmemory": {}}, "http": {"tls": {"certificate": str(cert), "key": str(key)}}})
    try:
        yield reg
    finally:
        reg.close()


def _store(strata: StrataRun, tmp_path: Path, name: str) -> str:
    from strata.engine import Engine
    from strata.reference import parse_normalized_named

    image = make_image(tmp_path / "img", [{"bin/a": b"tls" * 10_000}])
    engine = Engine.open(strata.root)
    try:
        return str(copy_image(image, StoreSink(engine), [parse_normalized_named(name)]).image_id)
    finally:
        engine.close()


def test_untrusted_certificate_refused_certs_d_ca_accepted(
    strata: StrataRun, tmp_path: Path, pki: CA, tls_registry: ServerThread
) -> None:
    host = tls_registry.url
    name = f"{host}/tls/img:1"
    image_id = _store(strata, tmp_path, name)

    refused = strata("push", name)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f'Error: Get "https://{host}/v2/": x509: certificate signed by unknown authority'

    other = CA(tmp_path / "other-pki", "some other CA")
    strata.env["STRATA_CERTS_DIRS"] = str(certs_d(tmp_path / "wrong.d", host, ca=other.ca_path))
    wrong = strata("push", name)
    assert wrong.returncode == 1 and "x509: certificate signed by unknown authority" in wrong.stderr

    strata.env["STRATA_CERTS_DIRS"] = str(certs_d(tmp_path / "certs.d", host, ca=pki.ca_path))
    pushed = strata("push", name)
    assert pushed.returncode == 0, pushed.stderr
    strata.env["STRATA_ROOT"] = str(tmp_path / "second")
    pulled = strata("pull", name, check=True)
    assert pulled.stdout.strip().splitlines()[-1] == name
    assert strata("images", "-q", "--no-trunc", check=True).stdout.split() == [image_id]

    with RegistryClient(host, config=HostsConfig(certs_dirs=(tmp_path / "certs.d",))) as c:
        c.ping()
        assert (c.endpoint.scheme, c.endpoint.verify) == ("https", True)

    # listed as insecure: TLS without verification, as Docker does
    strata.env.pop("STRATA_CERTS_DIRS")
    strata.env["STRATA_INSECURE_REGISTRIES"] = host
    strata.env["STRATA_ROOT"] = str(tmp_path / "third")
    assert strata("pull", name).returncode == 0


def test_certificate_for_another_name_is_refused(tmp_path: Path, pki: CA) -> None:
    cert, key = pki.issue("localonly", ["localhost"])
    reg = ServerThread({"storage": {"inmemory": {}}, "http": {"tls": {"certificate": str(cert), "key": str(key)}}})
    try:
        by_ip, by_name = f"127.0.0.1:{reg.port}", f"localhost:{reg.port}"
        certs_d(tmp_path / "d", by_ip, ca=pki.ca_path)
        certs_d(tmp_path / "d", by_name, ca=pki.ca_path)
        cfg = HostsConfig(certs_dirs=(tmp_path / "d",))
        with RegistryClient(by_ip, config=cfg) as c, pytest.raises(TransportError, match="x509: certificate is not valid"):
            c.ping()
        with RegistryClient(by_name, config=cfg) as c:
            c.ping()
            assert (c.endpoint.scheme, c.endpoint.verify) == ("https", True)
    finally:
        reg.close()


# ------------------------------------------------------------------ client certificates (distribution)


@pytest.fixture
def mtls_distribution(tmp_path: Path, pki: CA) -> Iterator[str]:
    """Debian's distribution registry on HTTPS requiring a client certificate signed by ``pki``."""
    from peers import REGISTRY_BIN, PeerUnavailable, ensure_debs, free_port

    try:
        ensure_debs("docker-registry")
    except PeerUnavailable as e:
        pytest.skip(str(e))
    cert, key = pki.issue("dist", ["127.0.0.1"])
    port = free_port()
    cfg = tmp_path / "dist.yml"
    cfg.write_text(json.dumps({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "dist-storage")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "x",
                 "tls": {"certificate": str(cert), "key": str(key), "clientcas": [str(pki.ca_path)]}},
    }))  # fmt: skip
    with open(tmp_path / "dist.log", "wb") as log:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    try:
        import socket

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.peers
def test_client_certificate_from_certs_d(strata: StrataRun, tmp_path: Path, pki: CA, mtls_distribution: str) -> None:
    host = mtls_distribution
    name = f"{host}/mtls/img:1"
    image_id = _store(strata, tmp_path, name)

    strata.env["STRATA_CERTS_DIRS"] = str(certs_d(tmp_path / "ca-only.d", host, ca=pki.ca_path))
    refused = strata("push", name)
    assert refused.returncode == 1
    # Go says "bad certificate" (TLS 1.2) or "certificate required" (TLS 1.3); never a plain-HTTP retry
    assert f'Get "https://{host}/v2/": remote error: tls: ' in refused.stderr, refused.stderr

    client = pki.issue("client", ["strata-client"], client=True)
    strata.env["STRATA_CERTS_DIRS"] = str(certs_d(tmp_path / "full.d", host, ca=pki.ca_path, client=client))
    pushed = strata("push", name)
    assert pushed.returncode == 0, pushed.stderr
    strata.env["STRATA_ROOT"] = str(tmp_path / "second")
    strata("pull", name, check=True)
    assert strata("images", "-q", "--no-trunc", check=True).stdout.split() == [image_id]
