"""The user's scenario: a private registry run as a container, the way every Docker user does it.

Two images, each run the same way by strata and by Docker 20.10: one shaped like Docker Hub's
``registry:2``, made from Debian's docker-registry (distribution 2.8.2) binary (``/bin/registry``, its
libc, ``/etc/docker/registry/config.yml``, ``EXPOSE 5000``, ``VOLUME /var/lib/registry``), and strata's
own registry as an image, built by ``scripts/registry_image.py`` (``make registry-image``) from this
Python, strata and its dependencies. Then: ``run -d -p … --restart=always -v
registry-data:/var/lib/registry``, push and pull through it (strata, skopeo and Docker 20.10), ``kill -9``
of the registry process brings it back with ``RestartCount`` 1, ``stop`` keeps it stopped, and a new
container on the same volume serves every image.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from container_helpers import SRC, Strata, cleanup, runtime_missing

from peers import REGISTRY_BIN, Dockerd, Skopeo, free_port, start_dockerd

pytestmark = pytest.mark.runtime


def registry_rootfs_tar(path: Path) -> Path:
    """``registry:2``'s files: the binary at /bin/registry, the libraries ``ldd`` names, the config."""
    with tarfile.open(path, "w") as tar:
        for d in ("bin", "etc", "etc/docker", "etc/docker/registry", "var", "var/lib", "var/lib/registry", "tmp",
                  "lib", "lib/x86_64-linux-gnu", "lib64"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(REGISTRY_BIN, "bin/registry")
        for lib in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
            tar.add(os.path.realpath(lib), lib.lstrip("/"))
        data = _recipe().CONFIG.encode()  # registry:2's config, as the recipe writes it
        info = tarfile.TarInfo("etc/docker/registry/config.yml")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return path


SCRIPT = SRC.parent / "scripts" / "registry_image.py"
DISTRIBUTION, STRATA_IMAGE = "registry:2", "strata-registry:latest"


def _recipe() -> ModuleType:
    """``scripts/registry_image.py``, the recipe ``make registry-image`` runs."""
    spec = importlib.util.spec_from_file_location("registry_image", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def strata_registry_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The root filesystem of strata's registry image, as ``make registry-image`` writes it."""
    out = tmp_path_factory.mktemp("strata-registry") / "rootfs.tar"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    subprocess.run([sys.executable, str(SCRIPT), "--tar", str(out), "--no-import"], env=env, check=True,
                   timeout=300)
    return out


def _import_image(s: Strata, image: str, tmp_path: Path, strata_rootfs: Callable[[], Path]) -> None:
    if image == DISTRIBUTION:
        s("import", "-c", 'ENTRYPOINT ["/bin/registry"]', "-c", 'CMD ["serve", "/etc/docker/registry/config.yml"]',
          "-c", "EXPOSE 5000", "-c", 'VOLUME ["/var/lib/registry"]',
          str(registry_rootfs_tar(tmp_path / "registry.tar")), image)
    else:
        changes = [a for c in _recipe().CHANGES for a in ("-c", c)]
        s("import", *changes, str(strata_rootfs()), image)


@pytest.fixture(params=[DISTRIBUTION, STRATA_IMAGE])
def registry_store(request: pytest.FixtureRequest, tmp_path: Path, busybox_tar: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Strata, str]]:
    """A store with the registry image under test and ``busybox:1``, its default bridge on a subnet of
    its own."""
    reason = runtime_missing()
    if reason:
        pytest.skip(reason)
    if not os.access(REGISTRY_BIN, os.X_OK) or not os.access("/usr/lib/podman/netavark", os.X_OK):
        pytest.skip("docker-registry or netavark is not installed")
    octet = secrets.randbelow(200) + 20
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"bip": f"10.215.{octet}.1/24",
                                  "default-address-pools": [{"base": f"10.216.{octet}.0/24", "size": 26}]}))
    monkeypatch.setenv("STRATA_CONFIG", str(config))
    s = Strata(tmp_path / "root")
    image: str = request.param
    _import_image(s, image, tmp_path, lambda: request.getfixturevalue("strata_registry_rootfs"))
    s("import", "-c", 'CMD ["/bin/sh"]', str(busybox_tar), "busybox:1")
    yield s, image
    cleanup(s)


def _catalog(port: int, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/_catalog", timeout=2) as r:
                repos: list[str] = json.load(r)["repositories"]
                return repos
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_registry_as_a_container_survives_kill_and_replacement(registry_store: tuple[Strata, str], skopeo: Skopeo,
                                                                dockerd: Dockerd, docker_busybox: str) -> None:
    reg, image = registry_store
    port = free_port()
    run = ("run", "-d", "-p", f"{port}:5000", "--restart=always", "-v", "registry-data:/var/lib/registry", image)
    reg(*run[:2], "--name", "myregistry", *run[2:])
    assert _catalog(port) == []
    ref = f"127.0.0.1:{port}/my/busybox:1"
    reg("tag", "busybox:1", ref)
    reg("push", ref)
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{ref}",
           f"docker://127.0.0.1:{port}/by/skopeo:1")
    dockerd.run("tag", docker_busybox, f"127.0.0.1:{port}/by/docker:1")  # Docker 20.10 pushes to it too
    dockerd.run("push", f"127.0.0.1:{port}/by/docker:1")
    everything = ["by/docker", "by/skopeo", "my/busybox"]
    assert _catalog(port) == everything
    mounts = json.loads(reg("inspect", "-f", "{{json .Mounts}}", "myregistry").stdout)
    assert [(m["Name"], m["Destination"]) for m in mounts] == [("registry-data", "/var/lib/registry")]

    pid = int(reg("inspect", "-f", "{{.State.Pid}}", "myregistry").stdout)
    os.kill(pid, signal.SIGKILL)  # the registry process dies: the policy brings it back within seconds
    deadline = time.monotonic() + 60
    while reg("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "myregistry").stdout.strip() != "1 running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert _catalog(port) == everything

    reg("stop", "myregistry")
    time.sleep(1.0)
    status = reg("ps", "-a", "--format", "{{.Status}}", "-f", "name=myregistry").stdout
    assert status.startswith("Exited ("), status  # stopped by the user: it stays stopped
    with pytest.raises(OSError):
        _catalog(port, timeout=0)

    reg("rm", "-f", "myregistry")
    reg(*run[:2], "--name", "myregistry2", *run[2:])  # a new container on the same volume
    assert _catalog(port) == everything
    reg("rmi", ref)
    reg("pull", ref)
    reg("pull", f"127.0.0.1:{port}/by/skopeo:1")
    dockerd.run("rmi", f"127.0.0.1:{port}/by/docker:1")
    dockerd.run("pull", f"127.0.0.1:{port}/by/docker:1")
    dockerd.run("rmi", f"127.0.0.1:{port}/by/docker:1")
    assert reg("volume", "ls", "-q").stdout == "registry-data\n"  # -v named it: no anonymous volume


def _until_status(docker: Dockerd, name: str, want: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while docker.run("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", name).stdout.strip() != want:
        assert time.monotonic() < deadline, docker.run("inspect", name).stdout
        time.sleep(0.1)


def test_docker_runs_the_same_registry_images(registry_store: tuple[Strata, str], skopeo: Skopeo) -> None:
    """Docker 20.10 runs the image strata built the same way, with the same results. Its daemon here has
    no default bridge (the test daemons share the host), so the container is on a network of its own and
    ``-p`` publishes through docker-proxy on loopback."""
    s, image = registry_store
    saved = s.root.parent / "image.tar"
    s("save", "-o", str(saved), image, "busybox:1")
    with start_dockerd(extra_args=["--userland-proxy=true"]) as docker:
        docker.run("load", "-i", str(saved))
        net = f"reg{secrets.token_hex(4)}"
        docker.run("network", "create", "--subnet", f"10.219.{secrets.randbelow(200) + 20}.0/24", net)
        port = free_port()
        run = ("run", "-d", "--network", net, "-p", f"127.0.0.1:{port}:5000", "--restart=always",
               "-v", "registry-data:/var/lib/registry", image)
        docker.run(*run[:2], "--name", "myregistry", *run[2:])
        assert _catalog(port) == []
        ref = f"127.0.0.1:{port}/my/busybox:1"
        s("tag", "busybox:1", ref)
        s("push", ref)  # strata pushes to the registry Docker runs
        skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{ref}",
               f"docker://127.0.0.1:{port}/by/skopeo:1")
        docker.run("tag", "busybox:1", f"127.0.0.1:{port}/by/docker:1")
        docker.run("push", f"127.0.0.1:{port}/by/docker:1")
        everything = ["by/docker", "by/skopeo", "my/busybox"]
        assert _catalog(port) == everything

        os.kill(int(docker.run("inspect", "-f", "{{.State.Pid}}", "myregistry").stdout), signal.SIGKILL)
        _until_status(docker, "myregistry", "1 running")
        assert _catalog(port) == everything
        docker.run("stop", "myregistry")
        time.sleep(1.0)
        assert docker.run("inspect", "-f", "{{.State.Status}}", "myregistry").stdout.strip() == "exited"

        docker.run("rm", "-f", "myregistry")
        docker.run(*run[:2], "--name", "myregistry2", *run[2:])  # a new container on the same volume
        assert _catalog(port) == everything
        s("rmi", ref)
        s("pull", ref)
        docker.run("rmi", f"127.0.0.1:{port}/by/docker:1")
        docker.run("pull", f"127.0.0.1:{port}/by/skopeo:1")
        docker.run("rm", "-f", "myregistry2")
        docker.run("network", "rm", net)
