"""A real registry server on 127.0.0.1 (in a thread or a subprocess) and a tiny HTTP client."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from strata.server.app import create_app, create_debug_app
from strata.server.config import RegistryConfig, build_config

__all__ = ["Client", "Resp", "ServerProcess", "ServerThread", "free_port", "push_blob", "push_image", "random_blob", "sha"]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def random_blob(size: int) -> bytes:
    return os.urandom(size)


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def codes(self) -> list[str]:
        return [e["code"] for e in self.json()["errors"]]

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


@dataclass
class Client:
    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None
    default_headers: dict[str, str] = field(default_factory=dict)

    def conn(self) -> http.client.HTTPConnection:
        if self.ssl_context is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=30, context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Resp:
        c = self.conn()
        try:
            c.request(method, path, body=body, headers={**self.default_headers, **(headers or {})})
            r = c.getresponse()
            data = r.read()
            return Resp(r.status, dict(r.getheaders()), data)
        finally:
            c.close()

    def get(self, path: str, **kw: Any) -> Resp:
        return self.request("GET", path, **kw)


class ServerThread(Client):
    """The registry app served by aiohttp in a background thread, on a free loopback port."""

    def __init__(self, raw: dict[str, Any] | None = None, config: RegistryConfig | None = None) -> None:
        self.config = config or build_config(raw or {})
        self.app: web.Application | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(60):  # a loaded machine
            raise RuntimeError("registry did not start")
        if self._error:
            raise self._error
        ctx = None
        if self.config.tls_certificate:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        super().__init__("127.0.0.1", self.port, ctx)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as e:
            self._error = e
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        from strata.server.app import ssl_context

        self._stop = asyncio.Event()
        self.app = create_app(self.config)
        # a refused body (413) keeps its connection lingering up to 10 s; do not wait for it on close
        runner = web.AppRunner(self.app, access_log=None, handler_cancellation=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context(self.config))
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        # distribution's debug server (metrics, health) on a port of its own
        debug_runner = web.AppRunner(create_debug_app(self.app), access_log=None)
        await debug_runner.setup()
        debug_site = web.TCPSite(debug_runner, "127.0.0.1", 0)
        await debug_site.start()
        self.debug: Client = Client("127.0.0.1", debug_site.port)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await debug_runner.cleanup()
            await runner.cleanup()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerProcess(Client):
    """``python -m strata.server serve`` in a subprocess (for kill -9, real CLI, peers)."""

    def __init__(self, root: Path, config: Path | None = None, env: dict[str, str] | None = None,
                 tls_ca: Path | None = None, host: str = "127.0.0.1") -> None:
        self.root = root
        port = free_port(host)
        addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        argv = [sys.executable, "-m", "strata.server", "serve", "--addr", addr, "--root", str(root)]
        if config is not None:
            argv += ["--config", str(config)]
        self.log = root.parent / f"server-{port}.log"
        self._logf = open(self.log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=self._logf, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        ctx = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else None
        super().__init__(host, port, ctx)
        deadline = time.monotonic() + 60  # a server's start on a loaded machine
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                with socket.create_connection((host, port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {self.log.read_text()}")
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._logf.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def push_blob(c: Client, repo: str, data: bytes) -> str:
    d = sha(data)
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", body=data,
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status == 201, (r.status, r.body)
    return d


def push_image(c: Client, repo: str, tag: str, layers: list[bytes] | None = None,
               media_type: str = "application/vnd.oci.image.manifest.v1+json") -> tuple[str, bytes]:
    """Push a config + layers + manifest; returns (manifest digest, manifest bytes)."""
    layers = layers if layers is not None else [random_blob(1000)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "nonce": os.urandom(8).hex()}).encode()
    cfg_type = ("application/vnd.oci.image.config.v1+json" if "oci" in media_type
                else "application/vnd.docker.container.image.v1+json")
    layer_type = ("application/vnd.oci.image.layer.v1.tar+gzip" if "oci" in media_type
                  else "application/vnd.docker.image.rootfs.diff.tar.gzip")
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": cfg_type, "digest": push_blob(c, repo, config), "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": push_blob(c, repo, blob), "size": len(blob)} for blob in layers],
    }
    body = json.dumps(manifest).encode()
    r = c.request("PUT", f"/v2/{repo}/manifests/{tag}", body=body, headers={"Content-Type": media_type})
    assert r.status == 201, (r.status, r.body)
    return sha(body), body
