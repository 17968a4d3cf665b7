"""The peer fixtures work: a private dockerd 20.10, distribution registries, skopeo and podman."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from peers import (
    Dockerd,
    Podman,
    Registry,
    Skopeo,
    busybox_rootfs_tar,
    ensure_debs,
    make_busybox_rootfs,
    reap_stale_peers,
)

DEFAULT_DOCKER_PATHS = (Path("/var/run/docker.sock"), Path("/run/docker.sock"), Path("/var/lib/docker"))
_PREEXISTING = {p: p.exists() for p in DEFAULT_DOCKER_PATHS}


def test_busybox_rootfs_has_busybox_and_applets(tmp_path: Path) -> None:
    root = make_busybox_rootfs(tmp_path / "root")
    assert (root / "bin" / "busybox").stat().st_size > 100_000
    assert (root / "bin" / "sh").readlink() == Path("busybox")
    assert (root / "etc" / "passwd").read_text().startswith("root:x:0:0:")


def test_busybox_tar_is_deterministic(tmp_path: Path) -> None:
    a = busybox_rootfs_tar(tmp_path / "a.tar")
    b = busybox_rootfs_tar(tmp_path / "b.tar")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    with tarfile.open(a) as tar:
        names = tar.getnames()
        assert "bin/busybox" in names and "bin/echo" in names
        assert all(m.uid == 0 and m.gid == 0 for m in tar.getmembers())


def test_busybox_tar_compresses_by_suffix(tmp_path: Path) -> None:
    gz = busybox_rootfs_tar(tmp_path / "r.tar.gz", extra_files={"etc/motd": b"hello\n"})
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    with tarfile.open(gz) as tar:
        member = tar.extractfile("etc/motd")
        assert member is not None and member.read() == b"hello\n"


def test_ensure_debs_is_a_noop_when_installed() -> None:
    ensure_debs("busybox-static")  # installed by the tests above; must not call apt again


def test_dockerd_is_debian_20_10(dockerd: Dockerd) -> None:
    fmt = "{{.Client.Version}} {{.Server.Version}}"
    client, server = dockerd.run("version", "--format", fmt).stdout.split()
    assert server.startswith("20.10.")
    assert client.startswith("20.10.")
    assert len(str(dockerd.socket)) < 100
    assert dockerd.env["DOCKER_HOST"] == f"unix://{dockerd.socket}"
    root_dir = dockerd.run("info", "--format", "{{.DockerRootDir}}").stdout.strip()
    assert root_dir == str(dockerd.data_root)


def test_docker_import_and_run_busybox(dockerd: Dockerd, busybox_tar: Path) -> None:
    dockerd.run("import", "-c", 'CMD ["/bin/sh"]', str(busybox_tar), "harness/bb:import")
    res = dockerd.run("run", "--rm", "--network", "none", "harness/bb:import", "echo", "hi")
    assert res.stdout == "hi\n"
    res = dockerd.run("run", "--rm", "--network", "none", "-i", "harness/bb:import", "cat", input="piped\n")
    assert res.stdout == "piped\n"
    failed = dockerd.run("run", "--rm", "--network", "none", "harness/bb:import", "false", check=False)
    assert failed.returncode == 1


def test_fixture_never_touches_default_docker_paths(dockerd: Dockerd, docker_busybox: str) -> None:
    dockerd.run("run", "--rm", "--network", "none", docker_busybox, "true")
    for path, existed in _PREEXISTING.items():
        if not existed:
            assert not path.exists(), f"{path} appeared"


def test_registry_answers_v2(distribution_registry: Registry) -> None:
    status, headers, body = distribution_registry.request("GET", "/v2/")
    assert status == 200
    assert headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
    assert json.loads(body) == {}


def test_tls_registry_needs_credentials(distribution_registry_tls: Registry) -> None:
    reg = distribution_registry_tls
    assert reg.url.startswith("https://127.0.0.1:") and reg.ca_path is not None
    status, headers, _ = reg.request("GET", "/v2/", auth=False)
    assert status == 401
    assert headers.get("Www-Authenticate", "").startswith("Basic realm=")
    status, _, _ = reg.request("GET", "/v2/")
    assert status == 200


def test_skopeo_copies_docker_archive_to_registry(
    dockerd: Dockerd, docker_busybox: str, skopeo: Skopeo, distribution_registry: Registry, tmp_path: Path
) -> None:
    archive = tmp_path / "bb.tar"
    dockerd.run("save", "-o", str(archive), docker_busybox)
    dest = f"docker://{distribution_registry.host}/harness/skopeo:1"
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}", dest)
    status, _, body = distribution_registry.request("GET", "/v2/harness/skopeo/tags/list")
    assert status == 200 and json.loads(body)["tags"] == ["1"]
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", dest).stdout)
    assert inspected["Os"] == "linux"


def test_skopeo_and_docker_use_the_tls_registry(
    dockerd: Dockerd, docker_busybox: str, skopeo: Skopeo, distribution_registry_tls: Registry, tmp_path: Path
) -> None:
    reg = distribution_registry_tls
    assert reg.cert_dir is not None and reg.username and reg.password
    archive = tmp_path / "bb.tar"
    dockerd.run("save", "-o", str(archive), docker_busybox)
    dest = f"docker://{reg.host}/harness/tls:1"
    creds = f"--dest-creds={reg.username}:{reg.password}"
    skopeo("copy", f"--dest-cert-dir={reg.cert_dir}", creds, f"docker-archive:{archive}", dest)
    # docker: loopback registries are "insecure" by default (TLS without verification)
    dockerd.run("login", "-u", reg.username, "--password-stdin", reg.host, input=reg.password)
    client_config = json.loads(Path(dockerd.env["DOCKER_CONFIG"], "config.json").read_text())
    assert reg.host in client_config["auths"]  # the private client config, never ~/.docker
    dockerd.run("pull", f"{reg.host}/harness/tls:1")
    res = dockerd.run("run", "--rm", "--network", "none", f"{reg.host}/harness/tls:1", "echo", "pulled")
    assert res.stdout == "pulled\n"


def test_podman_pulls_from_registry(
    dockerd: Dockerd, docker_busybox: str, podman: Podman, distribution_registry: Registry
) -> None:
    ref = f"{distribution_registry.host}/harness/podman:1"
    dockerd.run("tag", docker_busybox, ref)
    dockerd.run("push", ref)
    podman.trust_insecure(distribution_registry.host)
    podman("pull", "-q", ref)
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert ref in listed
    graphroot = podman("info", "--format", "{{.Store.GraphRoot}}").stdout.strip()
    assert graphroot.startswith(str(podman.root))


@pytest.mark.runtime
def test_podman_runs_pulled_image(podman: Podman, dockerd: Dockerd, docker_busybox: str, tmp_path: Path) -> None:
    archive = tmp_path / "bb.tar"
    dockerd.run("save", "-o", str(archive), docker_busybox)
    podman("load", "-q", "-i", str(archive))
    res = podman("run", "--rm", "--network", "none", docker_busybox, "echo", "podman-ran")
    assert res.stdout.strip() == "podman-ran"


@pytest.mark.peers
def test_peers_of_a_killed_process_are_reaped(tmp_path: Path) -> None:
    script = tmp_path / "orphan.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import peers\n"
        "d = peers.start_dockerd()\n"
        "r = peers.start_registry()\n"
        "print(d.root, r.root, d.process.pid, r.process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if not line:
            pytest.skip("could not start peers in a child process")
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    dockerd_root, registry_root = Path(line[0]), Path(line[1])
    pids = [int(line[2]), int(line[3])]
    assert dockerd_root.exists() and registry_root.exists()
    reap_stale_peers()  # a concurrent test process may reap them first: check the outcome only
    assert not dockerd_root.exists() and not registry_root.exists()
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_podman_pulls_from_tls_registry_with_ca_and_creds(
    dockerd: Dockerd, docker_busybox: str, skopeo: Skopeo, podman: Podman, distribution_registry_tls: Registry,
    tmp_path: Path,
) -> None:  # fmt: skip
    reg = distribution_registry_tls
    assert reg.cert_dir is not None and reg.username and reg.password
    archive = tmp_path / "bb.tar"
    dockerd.run("save", "-o", str(archive), docker_busybox)
    ref = f"{reg.host}/harness/podman-tls:1"
    skopeo("copy", f"--dest-cert-dir={reg.cert_dir}", f"--dest-creds={reg.username}:{reg.password}",
           f"docker-archive:{archive}", f"docker://{ref}")  # fmt: skip
    denied = podman("pull", "-q", f"--cert-dir={reg.cert_dir}", ref, check=False)
    assert denied.returncode != 0
    podman("login", f"--cert-dir={reg.cert_dir}", "-u", reg.username, "--password-stdin", reg.host,
           input=reg.password)  # fmt: skip
    podman("pull", "-q", f"--cert-dir={reg.cert_dir}", ref)
    assert ref in podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    auth = json.loads((podman.root / "auth.json").read_text())
    assert reg.host in auth["auths"]  # credentials went to the private auth file, not the machine's
