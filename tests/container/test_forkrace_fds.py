"""Helpers that outlive the command forking them hold none of its descriptors but their own
(``container.tty.hold_only``; the ``--rm`` network release's child and ``exec``'s terminal keeper use it):
a pipe's write end or a socket a forked child kept (fork without exec keeps them all, close-on-exec ones
too) would keep its reader from ever seeing the end of file while the child lives -- a ``run --rm``'s
output, a monitor's report. And ``fork_session``'s child is in a session of its own, its signal mask
and handlers as they were."""

from __future__ import annotations

import os
import select
import signal
import socket

from strata.container.tty import fork_session, hold_only


def test_a_child_that_holds_only_its_own_descriptor_lets_the_parents_reader_see_eof() -> None:
    out_r, out_w = os.pipe()  # a reader's pipe, as a ``run --rm``'s output: the child must not hold it
    a, b = socket.socketpair()  # close-on-exec, as Python makes every socket
    keep_r, keep_w = os.pipe()  # the child's own (the networks lock of the release child)
    pid = os.fork()
    if pid == 0:
        try:
            hold_only(keep_w)
            os.write(keep_w, b"k")
            os.read(0, 1)  # stdin is /dev/null now: at once
            select.select([], [], [], 30)  # alive long after the parent looked
        finally:
            os._exit(0)
    try:
        os.close(out_w)
        b.close()
        assert os.read(keep_r, 1) == b"k"  # the kept descriptor still works in the child
        assert select.select([out_r], [], [], 30)[0], "the child kept the pipe's write end"
        assert os.read(out_r, 1) == b""
        a.settimeout(30)
        assert a.recv(1) == b"", "the child kept the socket's other end"
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # all while the child lives
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        for fd in (out_r, keep_r, keep_w):
            os.close(fd)
        a.close()


def test_a_session_child_leaves_the_session_with_the_parents_mask_and_handlers() -> None:
    r, w = os.pipe()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    handler = signal.getsignal(signal.SIGINT)
    pid = fork_session()
    if pid == 0:
        try:
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
            same = mask == before and signal.getsignal(signal.SIGINT) is handler
            os.write(w, b"%d %d" % (os.getsid(0), same))
        finally:
            os._exit(0)
    try:
        os.close(w)
        sid, same = os.read(r, 64).split()
        assert int(sid) == pid and int(sid) != os.getsid(0)
        assert same == b"1"
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the parent's is given back
    finally:
        os.close(r)
        os.waitpid(pid, 0)
