"""The pull-through cache as Docker's ``registry-mirrors`` and strata's own: Docker 20.10 whose
``--registry-mirror`` is a strata registry proxying a CNCF distribution registry that holds
``library/busybox:x`` (no internet: Docker Hub itself is never reached). A second Docker, and strata
with ``registry-mirrors``, pull it again with the upstream stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from peers import Registry, busybox_rootfs_tar, start_dockerd
from server.helpers import Client, ServerProcess, free_port


def _strata(tmp: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "STRATA_"))}
    base.update(STRATA_ROOT=str(tmp / "store"), DOCKER_CONFIG=str(tmp / "dockercfg"),
                STRATA_CONFIG=str(tmp / "strata.json"), **(env or {}))
    res = subprocess.run([sys.executable, "-m", "strata", *args], env=base, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res


def _metric(server: ServerProcess, debug_port: int, name: str) -> float:
    """A counter from /metrics: on the debug server (http.debug.addr) where the registry has one, else
    on the API port."""
    try:
        text = Client("127.0.0.1", debug_port).get("/metrics").body.decode()
    except OSError:
        text = server.get("/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_docker_pulls_through_strata_and_again_with_the_upstream_down(
    registry_factory: Callable[..., Registry], tmp_path: Path
) -> None:
    upstream = registry_factory()
    rootfs = busybox_rootfs_tar(tmp_path / "rootfs.tar")
    pusher = tmp_path / "pusher"
    _strata(pusher, "import", "-c", 'CMD ["/bin/sh"]', str(rootfs), "busybox:x")
    _strata(pusher, "tag", "busybox:x", f"{upstream.host}/library/busybox:x")
    _strata(pusher, "push", f"{upstream.host}/library/busybox:x")

    cfg = tmp_path / "config.yml"
    debug = free_port()
    cfg.write_text(yaml.safe_dump({
        "proxy": {"remoteurl": upstream.url, "ttl": "1s"},
        "http": {"debug": {"addr": f"127.0.0.1:{debug}", "prometheus": {"enabled": True, "path": "/metrics"}}},
    }))
    with ServerProcess(tmp_path / "cache", cfg) as mirror:
        flags = ["--registry-mirror", f"http://{mirror.url}"]
        with start_dockerd(extra_args=flags) as docker:
            out = docker.run("pull", "busybox:x").stdout
            assert "Status: Downloaded newer image for busybox:x" in out, out
            assert docker.run("run", "--rm", "--network", "none", "busybox:x", "echo", "through").stdout == "through\n"
        assert _metric(mirror, debug, 'strata_registry_proxy_misses_total{type="blob"}') == 2  # config + layer
        upstream_log = upstream.log_path.read_text(errors="replace")
        assert "/v2/library/busybox/manifests/x" in upstream_log

        upstream.close()  # the upstream goes away; the ttl has passed by the next pull
        with start_dockerd(extra_args=flags) as docker:
            out = docker.run("pull", "busybox:x").stdout
            assert "Status: Downloaded newer image for busybox:x" in out, out
            assert docker.run("run", "--rm", "--network", "none", "busybox:x", "echo", "cached").stdout == "cached\n"
        assert _metric(mirror, debug, 'strata_registry_proxy_hits_total{type="blob"}') == 2

        # strata's own registry-mirrors setting goes through the same cache
        (tmp_path / "puller").mkdir()
        (tmp_path / "puller/strata.json").write_text(json.dumps({"registry-mirrors": [f"http://{mirror.url}"]}))
        res = _strata(tmp_path / "puller", "pull", "busybox:x")
        assert "Status: Downloaded newer image for busybox:x" in res.stdout, res.stdout
        assert res.stdout.strip().splitlines()[-1] == "docker.io/library/busybox:x"
        assert _metric(mirror, debug, 'strata_registry_proxy_hits_total{type="blob"}') == 4

        # and a push to the mirror is refused as distribution's proxy refuses it
        puller = tmp_path / "puller"
        _strata(puller, "tag", "busybox:x", f"{mirror.url}/library/busybox:y")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "STRATA_"))}
        env.update(STRATA_ROOT=str(puller / "store"), DOCKER_CONFIG=str(puller / "dockercfg"),
                   STRATA_CONFIG=str(puller / "strata.json"))
        res = subprocess.run([sys.executable, "-m", "strata", "push", f"{mirror.url}/library/busybox:y"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 1 and "Error: unsupported: The operation is unsupported." in res.stderr, res.stderr
