"""A scripted loopback HTTP server that records every request it gets (to catch leaked credentials).

``TrapServer(route)`` listens on 127.0.0.1:<port 0>; ``route(seen)`` gives ``(status, headers, body)`` for
each request. With ``tls=(cert, key)`` the same port speaks HTTPS *and* plain HTTP (the first byte of a
connection decides: a TLS handshake starts with 0x16), so an ``https://h:p`` → ``http://h:p`` redirect
stays on one host and port. ``seen`` lists every request: method, scheme, path with query, headers, body.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["Reply", "Seen", "TrapServer"]


@dataclass
class Seen:
    method: str
    scheme: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    def has_credentials(self, secret: str) -> bool:
        """An ``Authorization`` header, or ``secret`` anywhere in the request line or body."""
        return "authorization" in {k.lower() for k in self.headers} or secret in self.path or secret.encode() in self.body


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class _State:
    route: Callable[[Seen], Reply]
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        seen = Seen(self.command, scheme, self.path, dict(self.headers.items()), body)
        state = self.server.state
        with state.lock:
            state.seen.append(seen)
        status, headers, payload = state.route(seen)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State, ctx: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.ctx = ctx

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        if self.ctx is not None:
            sock.settimeout(10)
            if sock.recv(1, socket.MSG_PEEK) == b"\x16":
                sock = self.ctx.wrap_socket(sock, server_side=True)
        return sock, addr


class TrapServer:
    def __init__(self, route: Callable[[Seen], Reply], *, tls: tuple[Path, Path] | None = None) -> None:
        ctx = None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        self.state = _State(route)
        self._server = _Server(self.state, ctx)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def seen(self) -> list[Seen]:
        with self.state.lock:
            return list(self.state.seen)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> TrapServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
