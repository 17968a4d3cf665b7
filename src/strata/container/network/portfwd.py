"""Published ports of a rootless container on a user-defined network (Podman's ``rootlessport``).

The container sits behind a bridge in the rootless network namespace, which the host cannot route to. A
forwarder process per container holds the host's listening sockets (bound by strata in the host's network
namespace, as the user, so a busy or privileged port fails the start in Docker's words) and then enters
the rootless network namespace, from where it connects each accepted TCP connection (and relays each UDP
client's datagrams) to the container's address and port. It runs until the container's teardown ends it.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import selectors
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from strata.container.network.ports import Mapping
from strata.errors import StrataError

__all__ = ["PID_FILE", "main", "start", "stop"]

PID_FILE = "portfwd.pid"  # in the container's directory
_MARKER = "strata-portfwd"  # in the forwarder's command line: stop() ends only such a process
_CLONE_NEWNET = 0x40000000
_UDP_IDLE = 180.0  # seconds a UDP client's relay socket lives without traffic
_CODE = "import sys; from strata.container.network.portfwd import main; main(sys.argv[2])"


def _listen(m: Mapping, name: str) -> socket.socket:
    kind = socket.SOCK_DGRAM if m.protocol == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((m.host_ip or "0.0.0.0", m.host_port))
        if kind == socket.SOCK_STREAM:
            s.listen(128)
    except OSError as e:
        s.close()
        why = "address already in use" if e.errno == 98 else (e.strerror or str(e)).lower()
        raise StrataError(f"driver failed programming external connectivity on endpoint {name}: Error starting "
                          f"userland proxy: listen {m.protocol}4 {m.host_ip or '0.0.0.0'}:{m.host_port}: bind: {why}",
                          exit_code=125) from None  # fmt: skip
    return s


def start(netns: Path, ports: list[Mapping], target_ip: str, pid_file: Path, name: str) -> None:
    """Bind ``ports`` on the host and leave a detached forwarder to ``target_ip`` (its pid in ``pid_file``)."""
    from strata.container.network.pasta import check_privileged

    check_privileged(ports)
    socks: list[socket.socket] = []
    ready_r, ready_w = os.pipe()
    try:
        for m in ports:
            socks.append(_listen(m, name))
        config = {"netns": str(netns), "ready": ready_w, "ports": [[s.fileno(), m.protocol, target_ip, m.container_port]
                                                                   for s, m in zip(socks, ports, strict=True)]}  # fmt: skip
        pid = _spawn([*(s.fileno() for s in socks), ready_w], json.dumps(config))
        pid_file.write_text(f"{pid}\n")
        os.close(ready_w)
        ready_w = -1
        if not select.select([ready_r], [], [], 30)[0] or os.read(ready_r, 1) != b"1":
            stop(pid_file)
            raise StrataError("the rootless port forwarder could not enter the rootless network namespace",
                              exit_code=125)
    finally:
        for s in socks:
            s.close()
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)


def _spawn(fds: list[int], config: str) -> int:
    """A detached forwarder (its own session, not our child) holding ``fds``; its pid."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child execs or exits
        try:
            os.close(r)
            os.setsid()
            pid = os.fork()
            if pid == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                for fd in fds:
                    os.set_inheritable(fd, True)
                _close_others(fds)
                os.execv(sys.executable, [sys.executable, "-c", _CODE, _MARKER, config])
            os.write(w, str(pid).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        answer = os.read(r, 32)
    finally:
        os.close(r)
        os.waitpid(child, 0)
    if not answer:
        raise StrataError("cannot start the rootless port forwarder", exit_code=125)
    return int(answer)


def _close_others(keep: list[int]) -> None:
    """In the forked child: every descriptor but stdio and ``keep`` closed (a lock's among them)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def stop(pid_file: Path) -> None:
    """End the forwarder recorded in ``pid_file`` (only if that pid is still one); its ports are free then."""
    from strata.container.network.pasta import wait_gone

    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if _MARKER.encode() in cmdline:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        wait_gone(pid)
    pid_file.unlink(missing_ok=True)


def _enter(netns: str) -> None:
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)


def main(config_text: str) -> None:
    """The forwarder (run by ``start``): enter the rootless network namespace, then relay until killed."""
    config = json.loads(config_text)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _enter(str(config["netns"]))  # the listening sockets stay in the host's namespace
    os.write(int(config["ready"]), b"1")
    os.close(int(config["ready"]))
    sel = selectors.DefaultSelector()
    for fd, proto, ip, port in config["ports"]:
        kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
        sock = socket.socket(socket.AF_INET, kind, fileno=int(fd))
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, (proto, (str(ip), int(port)), {}))
    while True:
        for key, _ in sel.select(timeout=30):
            kind, where, clients = key.data
            if kind == "tcp":
                _accept(key.fileobj, where)  # type: ignore[arg-type]
            elif kind == "udp":
                _udp_in(sel, key.fileobj, where, clients)  # type: ignore[arg-type]
            else:
                _udp_back(where)
        _expire(sel)


def _accept(listener: socket.socket, target: tuple[str, int]) -> None:
    try:
        client, _ = listener.accept()
    except OSError:
        return
    threading.Thread(target=_relay_tcp, args=(client, target), daemon=True).start()


def _relay_tcp(client: socket.socket, target: tuple[str, int]) -> None:
    """Copy both ways until both sides have closed (a half-close is passed on)."""
    client.setblocking(True)
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    open_ends = {client: upstream, upstream: client}
    try:
        while open_ends:
            ready, _, _ = select.select(list(open_ends), [], [])
            for src in ready:
                data = src.recv(65536)
                dst = open_ends[src]
                if data:
                    dst.sendall(data)
                    continue
                del open_ends[src]
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
    except OSError:
        pass
    finally:
        client.close()
        upstream.close()


class _UdpClient:
    """One host client of a published UDP port: its relay socket in the rootless namespace."""

    __slots__ = ("host", "last", "peer", "sock")

    def __init__(self, host: socket.socket, peer: Any, target: tuple[str, int]) -> None:
        self.host, self.peer, self.last = host, peer, time.monotonic()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect(target)


def _udp_in(sel: selectors.BaseSelector, host: socket.socket, target: tuple[str, int],
            clients: dict[Any, _UdpClient]) -> None:
    """A datagram from a host client: sent on from that client's own socket to the container."""
    try:
        data, peer = host.recvfrom(65536)
    except OSError:
        return
    client = clients.get(peer)
    try:
        if client is None:
            client = clients[peer] = _UdpClient(host, peer, target)
            sel.register(client.sock, selectors.EVENT_READ, ("reply", client, clients))
        client.last = time.monotonic()
        client.sock.send(data)
    except OSError:
        pass


def _udp_back(client: _UdpClient) -> None:
    """The container's answer, sent to the host client from the published socket."""
    try:
        data = client.sock.recv(65536)
        client.host.sendto(data, client.peer)
        client.last = time.monotonic()
    except OSError:
        pass


def _expire(sel: selectors.BaseSelector) -> None:
    now = time.monotonic()
    for key in list(sel.get_map().values()):
        kind, client, clients = key.data
        if kind == "reply" and now - client.last > _UDP_IDLE:
            sel.unregister(key.fileobj)
            clients.pop(client.peer, None)
            client.sock.close()
