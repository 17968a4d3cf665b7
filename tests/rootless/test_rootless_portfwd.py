"""The rootless port forwarder on its own (as root, with a namespace of the test's): host sockets bound
first, then the relay runs inside the other network namespace; TCP (with a half-close) and UDP both ways,
a busy port refused in Docker's words, and stop() frees the ports."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rootlesshelpers import free_port

from strata.container.network import portfwd
from strata.container.network.ports import Mapping
from strata.errors import StrataError

ECHO = """
import socket, sys, threading
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 7001))
    s.listen()
    while True:
        c, _ = s.accept()
        data = b""
        while chunk := c.recv(4096):
            data += chunk
        c.sendall(b"tcp:" + data); c.close()
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 7002))
    while True:
        data, peer = u.recvfrom(4096); u.sendto(b"udp:" + data, peer)
threading.Thread(target=tcp, daemon=True).start()
print("ready", flush=True)
udp()
"""


@pytest.fixture
def netns() -> Iterator[Path]:
    """A network namespace of its own with an echo server on its loopback (TCP 7001, UDP 7002)."""
    name = f"strlfwd{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    server = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", ECHO], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        yield Path("/run/netns") / name
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_tcp_and_udp_are_relayed_into_the_namespace(netns: Path, tmp_path: Path) -> None:
    tcp, udp = free_port(), free_port()
    pid_file = tmp_path / portfwd.PID_FILE
    portfwd.start(netns, [Mapping("127.0.0.1", tcp, 7001, "tcp"), Mapping("127.0.0.1", udp, 7002, "udp")],
                  "127.0.0.1", pid_file, "c (e)")  # fmt: skip
    pid = int(pid_file.read_text())
    try:
        assert Path(f"/proc/{pid}/ns/net").stat().st_ino == netns.stat().st_ino  # in there when start() returns
        with socket.create_connection(("127.0.0.1", tcp), timeout=10) as s:
            s.sendall(b"hello")
            s.shutdown(socket.SHUT_WR)  # the half-close reaches the server, whose answer comes back
            assert s.makefile("rb").read() == b"tcp:hello"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(10)
            u.sendto(b"ping", ("127.0.0.1", udp))
            assert u.recvfrom(100) == (b"udp:ping", ("127.0.0.1", udp))
        with pytest.raises(StrataError, match=f"listen tcp4 127.0.0.1:{tcp}: bind: address already in use$"):
            portfwd.start(netns, [Mapping("127.0.0.1", tcp, 7001, "tcp")], "127.0.0.1", tmp_path / "other", "d (f)")
    finally:
        portfwd.stop(pid_file)
    assert not pid_file.exists()
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", tcp), timeout=2).close()
    time.sleep(0)  # the port is free again: a new forwarder binds it
    portfwd.start(netns, [Mapping("127.0.0.1", tcp, 7001, "tcp")], "127.0.0.1", pid_file, "c (e)")
    portfwd.stop(pid_file)
