"""Rootless networking through slirp4netns (Podman 4's default), where pasta is missing or
``STRATA_ROOTLESS_NETWORK=slirp4netns`` asks for it: a user-mode TCP/IP stack connects the container's
namespace (10.0.2.100/24, gateway 10.0.2.2, DNS forwarder 10.0.2.3) with the host loopback closed to
the container (``--disable-host-loopback``); each ``-p`` is an ``add_hostfwd`` on its API socket.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
from pathlib import Path

from strata.container.network.ports import Mapping
from strata.errors import StrataError

__all__ = ["API_SOCKET", "start"]

API_SOCKET = "slirp4netns.sock"  # in the container's directory, next to the pid file


def _error(detail: str) -> StrataError:
    return StrataError(f"setting up slirp4netns for the rootless network: {detail}", exit_code=125)


def start(netns: Path, ports: list[Mapping], pid_file: Path, userns: Path | None = None) -> None:
    """Connect ``netns`` and forward ``ports``; the daemon's pid goes to ``pid_file``."""
    if shutil.which("slirp4netns") is None:
        raise StrataError("rootless networking needs pasta or slirp4netns: install the passt or slirp4netns "
                          "package, or use --network none or --network host", exit_code=125)  # fmt: skip
    sock = pid_file.with_name(API_SOCKET)
    sock.unlink(missing_ok=True)
    log = pid_file.with_name("slirp4netns.log")
    ready_r, ready_w = os.pipe()
    try:
        with log.open("wb") as err:
            proc = subprocess.Popen(
                ["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback", "--netns-type=path",
                 f"--ready-fd={ready_w}", f"--api-socket={API_SOCKET}",
                 *([f"--userns-path={userns}"] if userns else []), str(netns), "tap0"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                pass_fds=(ready_w,), start_new_session=True, cwd=sock.parent,  # a socket path is short
            )  # fmt: skip
        os.close(ready_w)
        ready_w = -1
        pid_file.write_text(f"{proc.pid}\n")
        if not select.select([ready_r], [], [], 10)[0] or os.read(ready_r, 1) != b"1":
            lines = log.read_text(errors="replace").strip().splitlines()
            raise _error(lines[-1] if lines else "it did not come up")
    finally:
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)
    for m in ports:
        _forward(sock, m)


def _forward(sock: Path, m: Mapping) -> None:
    request = {"execute": "add_hostfwd", "arguments": {"proto": m.protocol, "host_addr": m.host_ip or "0.0.0.0",
               "host_port": m.host_port, "guest_port": m.container_port}}  # fmt: skip
    dir_fd = os.open(sock.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(f"/proc/self/fd/{dir_fd}/{sock.name}")  # the store path may exceed sun_path's 108 bytes
            s.sendall(json.dumps(request).encode())
            s.shutdown(socket.SHUT_WR)
            answer = b"".join(iter(lambda: s.recv(4096), b""))
    finally:
        os.close(dir_fd)
    _check_reply(m, answer)


def _check_reply(m: Mapping, answer: bytes) -> None:
    try:
        reply = json.loads(answer or b"{}")
    except ValueError:
        reply = {}
    if "return" not in reply:
        detail = (reply.get("error") or {}).get("desc") if isinstance(reply.get("error"), dict) else None
        raise _error(f"forwarding {m.host_ip or '0.0.0.0'}:{m.host_port}: {detail or answer.decode(errors='replace')}")
