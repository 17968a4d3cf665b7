"""Drive ``strata run -i -t`` through a real pseudo-terminal, as a user at a terminal would."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time


class PtySession:
    """A child process on the slave side of a new pty; we type into and read from the master."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24, cols: int = 80) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # child: the pty is its controlling terminal and stdio
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.resize(rows, cols, signal_child=False)
        self.output = b""
        self.pos = 0
        self.status: int | None = None

    def resize(self, rows: int, cols: int, *, signal_child: bool = True) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        if signal_child:
            os.kill(self.pid, signal.SIGWINCH)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        self.output += data
        return True

    def expect(self, needle: bytes, timeout: float = 60.0) -> None:
        """Wait for ``needle`` after the previous match; the next expect starts after this one."""
        deadline = time.monotonic() + timeout
        while needle not in self.output[self.pos :] and time.monotonic() < deadline:
            if not self._read(0.1):
                break
        at = self.output.find(needle, self.pos)
        if at < 0:
            raise AssertionError(f"{needle!r} not seen; output so far: {self.output!r}")
        self.pos = at + len(needle)

    def expect_prompt(self, timeout: float = 60.0) -> None:
        self.expect(b"# ", timeout)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def sendline(self, line: str) -> None:
        self.send(line.encode() + b"\r")

    def wait(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                while self._read(0.05):
                    if not select.select([self.fd], [], [], 0)[0]:
                        break
                os.close(self.fd)
                return self.status
            self._read(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"strata did not exit; output: {self.output!r}")
