"""A private redis-server from Debian's package: loopback, its own port and directory, a password.

    from server.s3.redisd import start_redis
    with start_redis() as r:
        r.section()        # a ``redis:`` config mapping (distribution's keys) for the registry

Under ``CI=true`` a redis that cannot start fails the test (:func:`session_redis`).
"""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from peers import PeerUnavailable, _remove_tree, ensure_debs, free_port, peer_tmpdir, reap_stale_peers

__all__ = ["RedisServer", "session_redis", "start_redis"]

REDIS_BIN = "/usr/bin/redis-server"


@dataclass
class RedisServer:
    root: Path
    port: int
    password: str
    proc: subprocess.Popen[bytes]

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def section(self, db: int = 0) -> dict[str, Any]:
        return {"addr": self.addr, "password": self.password, "db": db, "dialtimeout": "2s",
                "readtimeout": "5s", "writetimeout": "5s", "pool": {"maxidle": 4, "maxactive": 32}}  # fmt: skip

    def client(self, db: int = 0) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, db=db)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        _remove_tree(self.root)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _answers(port: int, password: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            got = b""
            while b"+PONG" not in got and b"-" not in got:
                chunk = s.recv(64)
                if not chunk:
                    break
                got += chunk
            return b"+PONG" in got
    except OSError:
        return False


def start_redis() -> RedisServer:
    ensure_debs("redis-server")
    reap_stale_peers()
    root = peer_tmpdir("sredis")
    port, password = free_port(), secrets.token_hex(16)
    conf = root / "redis.conf"
    conf.write_text(f"bind 127.0.0.1\nport {port}\nprotected-mode yes\nrequirepass {password}\n"
                    f"dir {root}\nsave \"\"\nappendonly no\ndaemonize no\nlogfile {root}/redis.log\n")  # fmt: skip
    proc = subprocess.Popen([REDIS_BIN, str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not _answers(port, password):
        if proc.poll() is not None or time.monotonic() > deadline:
            log = (root / "redis.log").read_text(errors="replace")[-2000:] if (root / "redis.log").exists() else ""
            RedisServer(root, port, password, proc).close()
            raise PeerUnavailable(f"redis-server did not start: {log}")
        time.sleep(0.05)
    return RedisServer(root, port, password, proc)


_SHARED: list[RedisServer] = []


def session_redis() -> RedisServer:
    """One redis-server per pytest process (stopped at exit): skip, or fail under CI=true."""
    if not _SHARED:
        try:
            _SHARED.append(start_redis())
        except PeerUnavailable as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"redis-server could not start: {exc}")
            pytest.skip(f"redis-server unavailable: {exc}")
        atexit.register(lambda: [r.close() for r in _SHARED])
    return _SHARED[0]
