"""Stateless replicas: N ``strata registry serve`` processes on their own ports over one radosgw
bucket and one Redis, behind HAProxy (Debian's) on loopback: round-robin per request, no
stickiness. Every response says which replica answered (``X-Served-By: r0``...). Shared by the
tests and ``make demo-scale`` / the benchmark::

    with start_radosgw() as rgw, start_redis() as rds, start_cluster(rgw, rds, workdir) as cl:
        cl.url                 # 127.0.0.1:PORT of the load balancer
        cl.replicas[1].proc.kill()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peers import PeerUnavailable, ensure_debs, free_port

from .radosgw import Radosgw
from .redisd import RedisServer
from .servers import S3RegistryProcess, registry_config

__all__ = ["Cluster", "HAProxy", "replica_config", "start_cluster", "start_haproxy"]

HAPROXY_BIN = "/usr/sbin/haproxy"
_SRC = str(Path(__file__).resolve().parents[3] / "src")


def replica_config(rgw: Radosgw, rds: RedisServer | None, bucket: str, port: int, *, db: int = 0,
                   **extra: Any) -> dict[str, Any]:  # fmt: skip
    """``rds`` None: replicas that share only the bucket (the GC lock's leases are objects in it)."""
    config = registry_config(rgw, bucket, port, redirect=False)
    if rds is not None:
        config["redis"] = rds.section(db)
        config["storage"]["cache"] = {"blobdescriptor": "redis"}
    config["log"]["level"] = "warning"
    config["http"]["trustedproxies"] = ["127.0.0.1"]  # HAProxy: its X-Forwarded-For names the client
    for key, value in extra.items():  # a mapping merges into the section (http: {ratelimit: ...})
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def _haproxy_cfg(root: Path, port: int, backends: list[str], keepalive: bool = False) -> str:
    servers = "\n".join(f"  server r{i} {addr} check inter 1s fall 3 rise 2" for i, addr in enumerate(backends))
    return f"""global
  maxconn 4096
  pidfile {root}/haproxy.pid
defaults
  mode http
  timeout connect 2s
  timeout client 300s
  timeout server 300s
  timeout http-request 60s
  timeout check 10s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
  option {"http-keep-alive" if keepalive else "http-server-close"}
  option forwardfor
frontend api
  bind 127.0.0.1:{port}
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /debug/health
  http-response set-header X-Served-By %s
{servers}
"""


@dataclass
class HAProxy:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def start_haproxy(root: Path, backends: list[str], keepalive: bool = False) -> HAProxy:
    """``keepalive``: connections to the replicas are kept and reused (still balanced per request)."""
    ensure_debs("haproxy")
    port = free_port()
    cfg = root / "haproxy.cfg"
    cfg.write_text(_haproxy_cfg(root, port, backends, keepalive))
    with (root / "haproxy.log").open("wb") as log:
        proc = subprocess.Popen([HAPROXY_BIN, "-W", "-db", "-f", str(cfg)], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    lb = HAProxy(root, port, proc)
    deadline = time.monotonic() + 60
    while not _answers(f"http://127.0.0.1:{port}/v2/"):
        if proc.poll() is not None or time.monotonic() > deadline:
            lb.close()
            raise PeerUnavailable(f"haproxy did not start: {(root / 'haproxy.log').read_text(errors='replace')}")
        time.sleep(0.05)
    return lb


@dataclass
class Cluster:
    rgw: Radosgw
    redis: RedisServer | None
    bucket: str
    workdir: Path
    replicas: list[S3RegistryProcess]
    lb: HAProxy | None = None

    @property
    def url(self) -> str:
        assert self.lb is not None
        return f"127.0.0.1:{self.lb.port}"

    def config_path(self, index: int) -> Path:
        """Replica ``index``'s configuration file (for ``strata registry garbage-collect``)."""
        return self.workdir / f"config-{self.replicas[index].url.rsplit(':', 1)[1]}.yml"

    def close(self) -> None:
        if self.lb is not None:
            self.lb.close()
        for r in self.replicas:
            r.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_replica(rgw: Radosgw, rds: RedisServer | None, bucket: str, workdir: Path, **extra: Any) -> S3RegistryProcess:
    env = {**os.environ, "PYTHONPATH": _SRC}
    config = replica_config(rgw, rds, bucket, free_port(), **extra)
    return S3RegistryProcess([sys.executable, "-m", "strata", "registry", "serve", "--config"], config, workdir, env)


def start_cluster(rgw: Radosgw, rds: RedisServer | None, workdir: Path, *, n: int = 3, bucket: str | None = None,
                  keepalive: bool = False, **extra: Any) -> Cluster:  # fmt: skip
    """``n`` replicas (extra top-level config keys for each) over a fresh bucket, behind HAProxy."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(rgw, rds, bucket or rgw.new_bucket(), workdir, [])
    try:
        for _ in range(n):
            cluster.replicas.append(start_replica(rgw, rds, cluster.bucket, workdir, **extra))
        cluster.lb = start_haproxy(workdir, [r.url for r in cluster.replicas], keepalive)
    except BaseException:
        cluster.close()
        raise
    return cluster


def serve_until_stopped(workdir: Path, ready_file: Path, n: int = 3) -> None:
    """radosgw + redis + ``n`` replicas + HAProxy until SIGTERM/SIGINT; writes ``ready_file`` (a shell
    snippet: LB, REPLICAS, REDIS, S3_ENDPOINT, BUCKET) once everything answers. For ``make demo-scale``."""
    from .radosgw import start_radosgw
    from .redisd import start_redis

    stop = {"now": False}

    def handler(signum: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    with start_radosgw() as rgw, start_redis() as rds, start_cluster(rgw, rds, workdir, n=n) as cl:
        ready_file.write_text(
            f"LB={cl.url}\nREPLICAS='{' '.join(r.url for r in cl.replicas)}'\nREDIS={rds.addr}\n"
            f"S3_ENDPOINT={rgw.endpoint}\nBUCKET={cl.bucket}\nCONFIG0={cl.config_path(0)}\n"
        )  # fmt: skip
        while not stop["now"]:
            time.sleep(0.2)
