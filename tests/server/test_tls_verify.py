"""Clients that really check strata's certificate: Docker 20.10 through /etc/docker/certs.d, skopeo
and podman through --cert-dir, each refusing an unknown or wrong CA.

Docker 20.10 treats every registry whose address falls in 127.0.0.0/8 as insecure (it appends that
range to the insecure CIDRs unconditionally and then skips certificate checks and certs.d), so a
registry on 127.0.0.1 or ``localhost`` never proves anything about TLS. IPv6 loopback is not in that
range: a name that resolves only to ``::1`` is a *secure* registry for Docker 20.10, checked against
the system roots plus ``/etc/docker/certs.d/<name:port>/ca.crt``. The test maps such a name in
/etc/hosts and serves strata on [::1] with a certificate for it; both changes are removed after.
(dockerd's Go resolver keeps /etc/hosts cached for 5 seconds, so the Docker test waits that long
after the edit before its first lookup.)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from peers import CertFiles, Dockerd, Podman, Skopeo, make_ca
from server.helpers import ServerProcess
from server.ocilayout import make_oci_layout
from strata.server.auth.htpasswd import add_user

HOSTNAME = "strata-registry-v6.test"
USER, PASSWORD = "tls-user", "tls-pw"
HOSTS = Path("/etc/hosts")
GO_HOSTS_CACHE = 5.5  # seconds: Go re-reads /etc/hosts at most every 5 s
CERTS_D = Path("/etc/docker/certs.d")


@contextmanager
def _hosts_entry(name: str, addr: str) -> Iterator[None]:
    line = f"{addr} {name}  # strata registry TLS test\n"
    text = HOSTS.read_text()
    added = name not in text.split()
    if added:
        with HOSTS.open("a") as f:  # in place: /etc/hosts may be a bind mount
            f.write(("" if text.endswith("\n") or not text else "\n") + line)
    try:
        yield
    finally:
        if added:
            kept = [ln for ln in HOSTS.read_text().splitlines(keepends=True) if ln != line]
            with HOSTS.open("w") as f:
                f.write("".join(kept))


_MAPPED_AT = [0.0]


@pytest.fixture(scope="module")
def v6_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, CertFiles, CertFiles]]:
    """strata with TLS + htpasswd on [::1], named HOSTNAME; yields (server, host:port, CA, wrong CA)."""
    if os.geteuid() != 0 or not os.access(HOSTS, os.W_OK):
        pytest.skip("needs root to map a test name in /etc/hosts")
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    tmp = tmp_path_factory.mktemp("tlsv6")
    good = make_ca(tmp / "good", hosts=(HOSTNAME,))
    wrong = make_ca(tmp / "wrong", hosts=(HOSTNAME,))  # same name, another CA
    add_user(str(tmp / "htpasswd"), USER, PASSWORD, create=True)
    cfg = tmp / "config.yml"
    cfg.write_text(yaml.safe_dump({
        "http": {"tls": {"certificate": str(good.cert), "key": str(good.key)}},
        "auth": {"htpasswd": {"realm": "strata", "path": str(tmp / "htpasswd")}},
    }))
    with _hosts_entry(HOSTNAME, "::1"):
        _MAPPED_AT[0] = time.monotonic()
        addrs = {ai[4][0] for ai in socket.getaddrinfo(HOSTNAME, None)}
        assert addrs == {"::1"}, addrs
        with ServerProcess(tmp / "root", cfg, host="::1") as srv:
            yield srv, f"{HOSTNAME}:{srv.port}", good, wrong


@pytest.fixture
def certs_d(v6_registry: tuple[ServerProcess, str, CertFiles, CertFiles]) -> Iterator[Path]:
    _, host, _, _ = v6_registry
    existed = CERTS_D.exists()
    d = CERTS_D / host
    yield d
    shutil.rmtree(d, ignore_errors=True)
    if not existed:
        shutil.rmtree(CERTS_D, ignore_errors=True)


def _cert_dir(tmp: Path, ca: CertFiles) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca.ca, tmp / "ca.crt")
    return tmp


def test_docker_checks_the_certificate_of_a_secure_registry(
    dockerd: Dockerd, docker_busybox: str, v6_registry: tuple[ServerProcess, str, CertFiles, CertFiles],
    certs_d: Path,
) -> None:
    srv, host, good, wrong = v6_registry
    time.sleep(max(0.0, _MAPPED_AT[0] + GO_HOSTS_CACHE - time.monotonic()))
    # nothing trusted yet: Docker refuses the handshake, it does not fall back to skipping checks
    res = dockerd.run("login", "-u", USER, "--password-stdin", host, input=PASSWORD, check=False)
    assert res.returncode != 0 and "x509: certificate signed by unknown authority" in res.stderr, res.stderr
    certs_d.mkdir(parents=True)
    shutil.copy(wrong.ca, certs_d / "ca.crt")  # a CA that did not sign the server certificate
    res = dockerd.run("login", "-u", USER, "--password-stdin", host, input=PASSWORD, check=False)
    assert res.returncode != 0 and "x509: certificate signed by unknown authority" in res.stderr, res.stderr
    assert "/v2/" not in srv.log.read_text()  # no request ever reached the registry
    shutil.copy(good.ca, certs_d / "ca.crt")
    dockerd.run("login", "-u", USER, "--password-stdin", host, input=PASSWORD)
    ref = f"{host}/verified/busybox:1"
    try:
        saved = json.loads((Path(dockerd.env["DOCKER_CONFIG"]) / "config.json").read_text())["auths"][host]
        assert base64.b64decode(saved["auth"]) == f"{USER}:{PASSWORD}".encode()
        dockerd.run("tag", docker_busybox, ref)
        before = dockerd.run("inspect", "--format", "{{.Id}}", ref).stdout.strip()
        assert "digest: sha256:" in dockerd.run("push", ref).stdout
        dockerd.run("rmi", ref)
        dockerd.run("pull", ref)
        assert dockerd.run("inspect", "--format", "{{.Id}}", ref).stdout.strip() == before
    finally:
        dockerd.run("logout", host, check=False)
        dockerd.run("rmi", ref, check=False)
    assert '"GET /v2/ HTTP/1.1" 200' in srv.log.read_text()


def test_skopeo_and_podman_check_the_certificate(
    skopeo: Skopeo, podman: Podman, busybox_tar: Path, tmp_path: Path,
    v6_registry: tuple[ServerProcess, str, CertFiles, CertFiles],
) -> None:
    _, host, good, wrong = v6_registry
    good_dir, wrong_dir = _cert_dir(tmp_path / "good", good), _cert_dir(tmp_path / "wrong", wrong)
    layout = tmp_path / "oci"
    make_oci_layout(layout, [busybox_tar])
    dest = f"docker://{host}/skopeo/verified:1"
    creds = f"{USER}:{PASSWORD}"
    for extra in ([], ["--dest-cert-dir", str(wrong_dir)]):
        res = skopeo("copy", "--dest-tls-verify=true", *extra, "--dest-creds", creds,
                     f"oci:{layout}:latest", dest, check=False)
        assert res.returncode != 0 and "x509: certificate signed by unknown authority" in res.stderr, res.stderr
    skopeo("copy", "--dest-tls-verify=true", "--dest-cert-dir", str(good_dir), "--dest-creds", creds,
           f"oci:{layout}:latest", dest)
    insp = json.loads(skopeo("inspect", "--tls-verify=true", "--cert-dir", str(good_dir), "--creds", creds,
                             dest).stdout)
    assert insp["Os"] == "linux"
    ref = f"{host}/skopeo/verified:1"
    res = podman("pull", "--tls-verify=true", "--cert-dir", str(wrong_dir), "--creds", creds, ref, check=False)
    assert res.returncode != 0 and "x509: certificate signed by unknown authority" in res.stderr, res.stderr
    podman("pull", "--tls-verify=true", "--cert-dir", str(good_dir), "--creds", creds, ref)
    podman("tag", ref, f"{host}/podman/verified:2")
    res = podman("push", "--tls-verify=true", "--cert-dir", str(wrong_dir), "--creds", creds,
                 f"{host}/podman/verified:2", check=False)
    assert res.returncode != 0 and "x509" in res.stderr, res.stderr
    podman("push", "--tls-verify=true", "--cert-dir", str(good_dir), "--creds", creds, f"{host}/podman/verified:2")
    podman("rmi", "-f", ref, f"{host}/podman/verified:2", check=False)
