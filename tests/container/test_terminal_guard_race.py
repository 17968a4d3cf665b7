"""The guard that gives a user's terminal its mode back (``container.tty.raw_terminal``) must survive the
hang-up its own front's death sends: when the session leader of a terminal dies, the kernel sends SIGHUP
to the terminal's foreground process group, which holds the guard too. A guard forked a moment before
(not yet scheduled on a loaded machine, so not yet ignoring SIGHUP) died with it and the terminal stayed
raw (seen in CI: ``run -it`` killed right after its prompt)."""

from __future__ import annotations

import os
import pty
import signal
import termios
import time

from strata.container.tty import raw_terminal


def _front(slave: int) -> None:
    """A session leader on the terminal that goes raw and is hung up at once: ``kill(0, SIGHUP)`` reaches
    its whole process group (the guard included) before the guard has had a chance to run."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # the runner's may be ignored (nohup) or blocked
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    os.setsid()
    os.close(os.open(os.ttyname(slave), os.O_RDWR))  # the controlling terminal
    with raw_terminal(slave):
        os.kill(0, signal.SIGHUP)
        time.sleep(30)


def test_the_guard_restores_the_terminal_when_its_front_is_hung_up_at_once() -> None:
    for _ in range(20):
        master, slave = pty.openpty()
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(master)
                    _front(slave)
                finally:
                    os._exit(0)
            os.close(slave)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGHUP
            deadline = time.monotonic() + 60  # the guard is another process: late on a loaded machine
            while not termios.tcgetattr(master)[3] & termios.ICANON:
                assert time.monotonic() < deadline, "the terminal stayed raw"
                time.sleep(0.01)
        finally:
            os.close(master)
