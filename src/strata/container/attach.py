"""Attaching to a running container without a daemon: the container's monitor serves its streams on a
unix socket (``<container dir>/attach.sock``), and ``attach`` (and ``run -it``/``start -ai``, which talk
to the monitor the same way from the start) relays the user's terminal to it.

The wire: frames of one type byte, a 4-byte big-endian length and the payload. Client to monitor:
stdin data, stdin closed, a window size (rows, cols), a signal to send. Monitor to client: stdout
data, stderr data, and the exit code when the container has ended. Detach keys (Docker's
``ctrl-p,ctrl-q``, ``--detach-keys``, the config file's ``detachKeys``) are read on the client side:
the client leaves, the container and its monitor go on.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import struct
from pathlib import Path
from types import FrameType
from typing import Any

from strata.container.tty import get_winsize, raw_terminal, set_winsize
from strata.errors import StrataError

__all__ = ["DEFAULT_DETACH_KEYS", "AttachHub", "EscapeProxy", "attach_session", "connect", "parse_detach_keys"]

SOCKET_NAME = "attach.sock"
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
STDIN, STDIN_EOF, RESIZE, SIGNAL = 0, 1, 2, 3
STDOUT, STDERR, EXIT = 11, 12, 14
_HEADER = struct.Struct(">BI")
_CTRL = "@abcdefghijklmnopqrstuvwxyz[\\]^_"  # ctrl-X is the character's index here
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def frame(kind: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


def parse_detach_keys(text: str) -> bytes:
    """Docker's ``term.ToBytes``: comma-separated keys, each one character or ``ctrl-<a-z@[\\]^_>``."""
    out = bytearray()
    for key in text.split(","):
        low = key.lower()
        if len(key) == 1:
            out.append(ord(key))
        elif low.startswith("ctrl-") and len(low) == 6 and low[5] in _CTRL:
            out.append(_CTRL.index(low[5]))
        else:
            raise StrataError(f"Unknown character: '{key}'")
    return bytes(out)


class _Frames:
    """Frames arriving on one non-blocking socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def read(self) -> list[tuple[int, bytes]] | None:
        """The complete frames readable now; None at end of stream."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        self.buf += data
        frames = []
        while len(self.buf) >= _HEADER.size:
            kind, size = _HEADER.unpack_from(self.buf)
            if len(self.buf) < _HEADER.size + size:
                break
            frames.append((kind, self.buf[_HEADER.size:_HEADER.size + size]))
            self.buf = self.buf[_HEADER.size + size:]
        return frames


# --- the monitor's side ----------------------------------------------------------------------


class AttachHub:
    """The monitor's attach socket and its clients: output goes to every client; a client's input goes
    to the container (its pty, or the stdin pipe a detached ``-i`` container gets)."""

    def __init__(self, cdir: Path, first: socket.socket | None = None) -> None:
        self.stdin_w: int | None = None
        self.first = first.fileno() if first is not None else -1  # its stdin's end closes the container's
        self.clients: dict[int, _Frames] = {}
        dir_fd = os.open(cdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                os.unlink(SOCKET_NAME, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}")  # short, whatever the root's path
            os.chmod(SOCKET_NAME, 0o600, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        self.listener.listen(8)
        self.listener.setblocking(False)
        if first is not None:
            self._add(first)

    def _add(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.clients[sock.fileno()] = _Frames(sock)

    def fds(self) -> list[int]:
        return [self.listener.fileno(), *self.clients]

    def owns(self, fd: int) -> bool:
        return fd == self.listener.fileno() or fd in self.clients

    def ready(self, fd: int, master: int | None, pid: int) -> None:
        """Accept a client, or act on what a client sent."""
        if fd == self.listener.fileno():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self._add(sock)
            return
        frames = self.clients[fd].read()
        if frames is None:
            self._drop(fd)
            return
        for kind, payload in frames:
            if kind == STDIN_EOF and fd == self.first:
                self._close_stdin(master)
            self._act(kind, payload, master, pid)

    def _act(self, kind: int, payload: bytes, master: int | None, pid: int) -> None:
        if kind == STDIN:
            target = master if master is not None else self.stdin_w
            if target is not None:
                _write_all(target, payload)
        elif kind == RESIZE and master is not None and len(payload) == 4:
            set_winsize(master, *struct.unpack(">HH", payload))
        elif kind == SIGNAL and len(payload) == 4:
            try:
                os.kill(pid, struct.unpack(">I", payload)[0])
            except OSError:
                pass

    def _close_stdin(self, master: int | None) -> None:
        """The first client's input ended (``run -i`` fed from a pipe): so does the container's."""
        if master is not None:
            _write_all(master, b"\x04")
        elif self.stdin_w is not None:
            os.close(self.stdin_w)
            self.stdin_w = None

    def broadcast(self, stream: str, data: bytes) -> None:
        message = frame(STDERR if stream == "stderr" else STDOUT, data)
        for fd in list(self.clients):
            if not self._send(fd, message):
                self._drop(fd)

    def _send(self, fd: int, message: bytes) -> bool:
        sock = self.clients[fd].sock
        view = memoryview(message)
        while view:
            try:
                view = view[sock.send(view):]
            except BlockingIOError:
                if not select.select([], [fd], [], 5.0)[1]:
                    return False  # a client that reads nothing for 5 s is dropped, the container goes on
            except OSError:
                return False
        return True

    def _drop(self, fd: int) -> None:
        client = self.clients.pop(fd, None)
        if client is not None:
            client.sock.close()

    def close(self, exit_code: int | None) -> None:
        """Tell every client the exit code (when there is one), then close everything."""
        for fd in list(self.clients):
            if exit_code is not None:
                self._send(fd, frame(EXIT, struct.pack(">i", exit_code)))
            self._drop(fd)
        self.listener.close()
        if self.stdin_w is not None:
            os.close(self.stdin_w)
            self.stdin_w = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
        except OSError:
            return


# --- the client's side -----------------------------------------------------------------------


def connect(cdir: Path) -> socket.socket | None:
    """A connection to the monitor of the container in ``cdir``; None when nothing serves it."""
    dir_fd = os.open(cdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}")
    except OSError as e:
        sock.close()
        if e.errno in (errno.ENOENT, errno.ECONNREFUSED):
            return None
        raise
    finally:
        os.close(dir_fd)
    return sock


class EscapeProxy:
    """Docker's escape proxy: bytes that begin the detach keys are held until they match or not."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to send on, whether the keys were typed)."""
        out = bytearray()
        for byte in data:
            if self.keys and byte == self.keys[len(self.held)]:
                self.held += bytes([byte])
                if self.held == self.keys:
                    return bytes(out), True
                continue
            out += self.held + bytes([byte])
            self.held = b""
        return bytes(out), False


_Escape = EscapeProxy  # its earlier name


class _Session:
    def __init__(self, sock: socket.socket, stdin: int | None, out: int, err: int, keys: bytes) -> None:
        self.sock, self.stdin, self.out, self.err = sock, stdin, out, err
        self.frames = _Frames(sock)
        self.escape = EscapeProxy(keys)

    def send(self, kind: int, payload: bytes = b"") -> None:
        try:
            self.sock.sendall(frame(kind, payload))
        except OSError:
            pass

    def resize(self, grow: bool = False) -> None:
        size = get_winsize(self.out)
        if size:
            rows, cols = size
            if grow:  # a size change makes the kernel send SIGWINCH: the program redraws its screen
                self.send(RESIZE, struct.pack(">HH", rows + 1, cols + 1))
            self.send(RESIZE, struct.pack(">HH", rows, cols))

    def loop(self) -> int | None:
        """Relay until the container ends (its exit code), the keys are typed (None) or the monitor
        goes away (-1)."""
        while True:
            watch = [self.sock.fileno()] + ([self.stdin] if self.stdin is not None else [])
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if self.stdin is not None and self.stdin in ready and self._input():
                return None
            if self.sock.fileno() in ready:
                frames = self.frames.read()
                if frames is None:
                    return -1
                for kind, payload in frames:
                    if kind == EXIT:
                        return int(struct.unpack(">i", payload)[0])
                    _write_all(self.err if kind == STDERR else self.out, payload)

    def _input(self) -> bool:
        assert self.stdin is not None
        try:
            data = os.read(self.stdin, 65536)
        except OSError:
            data = b""
        if not data:
            self.send(STDIN_EOF)
            self.stdin = None
            return False
        data, detach = self.escape.feed(data)
        if data:
            self.send(STDIN, data)
        return detach


def attach_session(sock: socket.socket, *, stdin: int | None, tty: bool, keys: bytes, sig_proxy: bool,
                   redraw: bool = True, out: int = 1, err: int = 2) -> int | None:
    """Relay the user's terminal to the container behind ``sock``: its exit code, None when the user
    typed the detach keys, -1 when its monitor went away without one. ``redraw``: make a terminal
    program redraw its screen (a window size change, as Docker's attach does)."""
    session = _Session(sock, stdin, out, err, keys)
    handlers: dict[signal.Signals, Any] = {}

    def winch(signum: int, frame_: FrameType | None) -> None:
        session.resize()

    def forward(signum: int, frame_: FrameType | None) -> None:
        session.send(SIGNAL, struct.pack(">I", signum))

    if tty:
        handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, winch)
        session.resize(grow=redraw)
    elif sig_proxy:
        for sig in _FORWARDED:
            handlers[sig] = signal.signal(sig, forward)
    try:
        if tty and stdin is not None and os.isatty(stdin):
            with raw_terminal(stdin):
                return session.loop()
        return session.loop()
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)
