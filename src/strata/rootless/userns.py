"""A new user + mount namespace with the full subordinate-id mapping, like ``podman unshare``.

The parent (unprivileged, outside) forks a child that unshares ``CLONE_NEWUSER | CLONE_NEWNS`` and
waits; the parent writes the child's ``uid_map``/``gid_map`` through ``newuidmap``/``newgidmap``
(setuid helpers that check ``/etc/subuid``/``/etc/subgid``) and lets it go; the child, now root of
its namespace, makes its mounts private and execs the command. The parent forwards termination
signals and returns the child's exit status, so the namespace lives exactly as long as the command.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

from strata.rootless.idmap import RootlessError, UserMaps, mapping_args

__all__ = ["CLONE_NEWNS", "CLONE_NEWUSER", "run_in_namespace"]

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
_IGNORED = (signal.SIGINT, signal.SIGQUIT)  # a terminal sends these to the child too


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _child(ready_w: int, go_r: int, argv: Sequence[str], env: Mapping[str, str]) -> None:
    """In the forked child: never returns (exec or ``_exit``); failures go to the parent on ``ready_w``."""
    try:
        libc = _libc()
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER|CLONE_NEWNS)")
        os.write(ready_w, b"R")
        if os.read(go_r, 1) != b"G":
            os._exit(125)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "making / private in the mount namespace")
        os.execvpe(argv[0], list(argv), dict(env))
    except OSError as e:
        try:
            os.write(ready_w, f"E{e.strerror or e}: {e.filename or argv[0]}".encode(errors="replace"))
        finally:
            os._exit(125)
    except BaseException:
        os._exit(125)


def _write_maps(pid: int, maps: UserMaps) -> None:
    for tool, lines in (("newuidmap", maps.uids), ("newgidmap", maps.gids)):
        done = subprocess.run(
            [tool, str(pid), *mapping_args(lines)],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            detail = done.stderr.strip() or f"exit status {done.returncode}"
            raise RootlessError(f"cannot set up the user namespace: {tool}: {detail}")


def _wait(pid: int) -> int:
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    saved = {s: signal.signal(s, forward) for s in _FORWARDED}
    saved.update({s: signal.signal(s, signal.SIG_IGN) for s in _IGNORED})
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _handshake(pid: int, ready_r: int, go_w: int, maps: UserMaps) -> None:
    """Map the child's ids once it has unshared, then release it; any failure kills it and raises."""
    first = os.read(ready_r, 1)
    if first != b"R":
        message = (first + os.read(ready_r, 4096)).decode(errors="replace")[1:]
        raise RootlessError(f"cannot create a user namespace: {message or 'the helper process died'}")
    _write_maps(pid, maps)
    os.write(go_w, b"G")
    rest = os.read(ready_r, 4096)  # EOF when the exec succeeded (the pipe is close-on-exec)
    if rest.startswith(b"E"):
        raise RootlessError(f"cannot run {rest[1:].decode(errors='replace')}")


def run_in_namespace(argv: Sequence[str], env: Mapping[str, str], maps: UserMaps) -> int:
    """Run ``argv`` (looked up in ``env``'s PATH) as root of a new user + mount namespace with ``maps``;
    its exit status (128+N for a signal N). ``RootlessError`` when the namespace cannot be made."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs or exits
        os.close(ready_r)
        os.close(go_w)
        _child(ready_w, go_r, argv, env)
    os.close(ready_w)
    os.close(go_r)
    try:
        _handshake(pid, ready_r, go_w, maps)
    except BaseException:
        _kill(pid)
        raise
    finally:
        os.close(ready_r)
        _close_quietly(go_w)
    return _wait(pid)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
