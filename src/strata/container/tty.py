"""Terminals: runc's console socket (receives the pty master over SCM_RIGHTS), raw mode and window size."""

from __future__ import annotations

import array
import fcntl
import os
import shutil
import socket
import struct
import tempfile
import termios
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from strata.errors import RuntimeFailure

__all__ = ["ConsoleSocket", "deferred_signals", "fork_session", "get_winsize", "hold_only", "raw_terminal", "set_winsize"]


def get_winsize(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal on ``fd``, or None when it is not a terminal."""
    try:
        data = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols, _, _ = struct.unpack("HHHH", data)
    return (rows, cols) if rows and cols else None


def set_winsize(fd: int, rows: int, cols: int) -> None:
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    except OSError:
        pass


@contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Put the terminal on ``fd`` in raw mode (Ctrl-C, Ctrl-D reach the container) and restore it."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    guard = _TerminalGuard(fd, saved)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        guard.done()


_SESSION_SIGNALS = (1, 2, 3, 15, 20)  # SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP: what a terminal sends its group


def fork_session() -> int:
    """``os.fork()`` whose child (0 returned) is in a session of its own before any signal can reach it.

    Until ``setsid()`` a child is in its parent's process group: the user's ^C, ^\\, ^Z or a hang-up sent to
    the terminal's foreground group a moment after the fork (the child not yet run, a loaded machine) would
    kill it half-way, or make the parent's Python handler raise in it (``KeyboardInterrupt`` at its first
    Python call; before a ``try`` it would go on as a second copy of the parent's command). The child is
    born with these signals blocked, discards what came meanwhile and then has the parent's handlers. A
    child that cannot leave the session exits (125); the parent's own pending signals arrive on return."""
    import signal

    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SESSION_SIGNALS)
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        raise
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return pid
    try:
        os.setsid()
        kept = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _SESSION_SIGNALS}  # pending ones discarded
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SESSION_SIGNALS)  # even under ``deferred_signals``
        for sig, handler in kept.items():
            if handler is not None:
                signal.signal(sig, handler)
    except BaseException:
        os._exit(125)
    return 0


@contextmanager
def deferred_signals() -> Iterator[None]:
    """The user's ^C, ^\\, ^Z, hang-up and SIGTERM held back (this thread) until the block is done: a
    start handed to a child (``fork_session``) is not cut off half-way by the front's own clean-up
    (a scratch directory the child still reads); the signal then takes effect as usual."""
    import signal

    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SESSION_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def hold_only(*keep: int) -> None:
    """In a forked child that outlives its parent: stdio and every descriptor but ``keep`` on /dev/null, so
    no pipe's or socket's reader waits on this child for its end of file. The numbers stay taken: an object
    of the parent's that owns one may still close it, and must not close another file then."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
        if fd not in keep and fd != devnull:
            os.dup2(devnull, fd, inheritable=fd <= 2)
    os.close(devnull)


class _TerminalGuard:
    """A small child process that gives the user's terminal its mode back if this process is killed
    (``kill -9`` of an attached ``run -it``: the container goes on, the shell must not stay raw). It
    holds only the terminal and a pipe whose end of file, unless ``done()`` came first, means we died."""

    def __init__(self, fd: int, saved: list[Any]) -> None:
        r, self._w = os.pipe()
        # in a session of its own from birth: the hang-up the front's death sends to the terminal's foreground
        # group may come before the child has run at all (a loaded machine); it never reaches the guard
        self._pid = fork_session()
        if self._pid == 0:
            try:
                _guard_main(fd, r, self._w, saved)
            finally:
                os._exit(0)
        os.close(r)

    def done(self) -> None:
        try:
            os.write(self._w, b"x")
        except OSError:
            pass
        os.close(self._w)
        os.waitpid(self._pid, 0)


def _guard_main(fd: int, r: int, w: int, saved: list[Any]) -> None:
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH):
        signal.signal(sig, signal.SIG_IGN)
    os.close(w)
    for name in os.listdir("/proc/self/fd"):  # hold nothing else open (sockets, pipes of the container)
        n = int(name)
        if n > 2 and n not in (fd, r):
            try:
                os.close(n)
            except OSError:
                pass
    if os.read(r, 1) == b"":  # the process in front died without restoring the terminal
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class ConsoleSocket:
    """A listening unix socket for ``--console-socket``; ``receive()`` returns the pty master fd."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="strata-console-"))
        self.path = self._dir / "console.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.path))
        self._sock.listen(1)

    def receive(self, alive: object, timeout: float = 30.0) -> int:
        """Wait for the runtime to connect and send the master; ``alive()`` says the runtime still runs."""
        deadline = time.monotonic() + timeout
        self._sock.settimeout(0.05)
        while True:
            try:
                conn, _ = self._sock.accept()
                break
            except TimeoutError:
                if callable(alive) and not alive():
                    raise RuntimeFailure("OCI runtime exited before sending the console") from None
                if time.monotonic() > deadline:
                    raise RuntimeFailure("timed out waiting for the container console") from None
        with conn:
            conn.settimeout(timeout)
            fds = array.array("i")
            _, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        if not fds:
            raise RuntimeFailure("the OCI runtime sent no console file descriptor")
        return int(fds[0])

    def close(self) -> None:
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ConsoleSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
