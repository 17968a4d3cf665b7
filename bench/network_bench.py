"""Networking, strata (netavark: kernel NAT) next to Docker 20.10 (its bridge driver and docker-proxy):

- ``run --rm IMAGE true`` on the default bridge network (namespace, veth, address, teardown included);
- HTTP requests per second to busybox httpd in a container through a published 127.0.0.1 port
  (Docker: docker-proxy, its default userland proxy; strata: netavark's DNAT), 4 client threads.

The private dockerd gets a bridge of its own (a fresh name and subnet, made here and deleted after)
and keeps its hands off the host's firewall (``--iptables=false``; published ports go through
docker-proxy). strata's store gets a config file with its own ``bip``. Both sides run the same image.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # type: ignore[import-not-found]
    Comparison,
    Timing,
    peers_running,
    print_ratio_table,
    repeat_count,
    save_results,
    strata_cmd,
)

from peers import (  # type: ignore[import-not-found]
    BUSYBOX_APPLETS,
    DOCKERD_BIN,
    Dockerd,
    _spawn,
    busybox_rootfs_tar,
    peer_tmpdir,
)

IMAGE = "bench/web:1"
REQUESTS = 2000
THREADS = 4


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def bridged_dockerd(octet: int) -> Iterator[Dockerd]:
    """A private dockerd whose default bridge is a fresh bridge (10.219.<octet>.1/24), docker-proxy on."""
    bridge = f"stdk{secrets.token_hex(4)}"
    _ip("link", "add", bridge, "type", "bridge")
    root = peer_tmpdir("nb")
    try:
        _ip("addr", "add", f"10.219.{octet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        sock = root / "d.sock"
        (root / "client").mkdir()
        (root / "daemon.json").write_text("{}\n")
        tag = secrets.token_hex(6)
        argv = [
            DOCKERD_BIN, "--config-file", str(root / "daemon.json"), "--data-root", str(root / "data"),
            "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"), "--host", f"unix://{sock}",
            "--bridge", bridge, "--iptables=false", "--ip-forward=false", "--ip-masq=false",
            "--userland-proxy=true", "--containerd-namespace", f"strata-{tag}",
            "--containerd-plugins-namespace", f"strata-{tag}-plugins",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(root / "client"))
        log = root / "dockerd.log"
        proc = _spawn(argv, log, env={k: v for k, v in env.items() if k != "DOCKER_HOST"})
        daemon = Dockerd(root=root, socket=sock, env=env, process=proc, log_path=log)
        deadline = time.monotonic() + 60
        while daemon.run("version", check=False, timeout=10).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                daemon.close()
                raise RuntimeError(f"dockerd did not start:\n{daemon.log_tail()}")
            time.sleep(0.1)
        try:
            yield daemon
        finally:
            daemon.close()
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)


def _strata(root: Path) -> list[str]:
    """This checkout's CLI (``common.strata_cmd`` without a venv entry point here)."""
    exe = strata_cmd(root)
    if Path(exe[0]).name == "strata":
        return exe
    return [sys.executable, "-m", "strata", "--root", str(root)]


def _interleaved(label: str, ours: Callable[[], object], theirs: Callable[[], object]) -> Comparison:
    """Both sides timed turn about (one warm-up each), so a busy machine weighs on both alike."""
    a, b = Timing(f"strata {label}"), Timing(f"docker {label}")
    for i in range(repeat_count() + 1):
        for fn, timing in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            if i:
                timing.runs.append(time.perf_counter() - t0)
    return Comparison(label, a, b)


def _checked(argv: list[str], env: dict[str, str]) -> Callable[[], None]:
    def run() -> None:
        res = subprocess.run(argv, env=env, capture_output=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {res.stderr.decode(errors='replace')}")

    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            _get(port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _get(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/index.html")
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status}")
    finally:
        conn.close()


def _hammer(port: int) -> None:
    """REQUESTS GETs over THREADS threads, one connection each (busybox httpd closes after a reply)."""
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for _ in range(n):
                _get(port)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(REQUESTS // THREADS,)) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def main() -> int:
    octet = secrets.randbelow(200) + 20
    with peers_running() as p, bridged_dockerd(octet) as docker:
        config = p.workdir / "strata.json"
        config.write_text(json.dumps({"bip": f"10.220.{octet}.1/24"}))
        env = {**os.environ, "STRATA_CONFIG": str(config)}
        s = _strata(p.strata_root)
        tar = busybox_rootfs_tar(p.workdir / "web.tar", applets=(*BUSYBOX_APPLETS, "httpd"))
        subprocess.run([*s, "import", "-c", 'CMD ["/bin/sh"]', str(tar), IMAGE], check=True, capture_output=True,
                       env=env)
        docker.run("import", "-c", 'CMD ["/bin/sh"]', str(tar), IMAGE)
        www = p.workdir / "www"
        www.mkdir()
        (www / "index.html").write_text("x" * 1024)
        rows = []
        rows.append(_interleaved("run --rm IMAGE true (default bridge)", _checked([*s, "run", "--rm", IMAGE, "true"], env),
                                 _checked(docker.argv("run", "--rm", IMAGE, "true"), docker.env)))
        web = ["-v", f"{www}:/www", IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]
        sport, dport = _free_port(), _free_port()
        subprocess.run([*s, "run", "-d", "--name", "web", "-p", f"127.0.0.1:{sport}:80", *web], check=True,
                       capture_output=True, env=env)
        docker.run("run", "-d", "--name", "web", "-p", f"127.0.0.1:{dport}:80", *web)
        _wait_http(sport)
        _wait_http(dport)
        http = _interleaved(f"{REQUESTS} HTTP GETs via 127.0.0.1 -p ({THREADS} clients)", lambda: _hammer(sport),
                            lambda: _hammer(dport))
        rows.append(http)
        print(f"requests/s: strata {REQUESTS / http.ours.median:.0f}, "
              f"docker (docker-proxy) {REQUESTS / http.theirs.median:.0f}")
        subprocess.run([*s, "rm", "-f", "web"], capture_output=True, check=False, env=env)
        print_ratio_table("networking: strata vs docker (ratio < 1: strata faster)", rows)
        save_results("network", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
