"""The user's rootless namespace, as Podman keeps it: one user + mount namespace per user, held open by
a *pause* process, that every rootless strata command joins.

The first command forks a child that unshares ``CLONE_NEWUSER | CLONE_NEWNS`` and waits; the parent
writes its ``uid_map``/``gid_map`` through ``newuidmap``/``newgidmap`` (setuid helpers that check
``/etc/subuid``/``/etc/subgid``) and lets it go; the child makes its mounts private and leaves a pause
process (its own session, stdio on /dev/null) in the namespace, whose pid goes to ``pause.pid`` in the
user's runtime directory. Every command, the first included, then joins that process's namespaces with
``setns`` (a process may join a user namespace its own uid owns) and goes on in-process as uid 0 there.
One namespace for all commands is what lets ``stop``/``exec`` reach a container a previous command
started, and overlay mounts made by one command be seen by the next.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import stat
import struct
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from strata.rootless.idmap import RootlessError, UserMaps, mapping_args

__all__ = ["CLONE_NEWNS", "CLONE_NEWUSER", "PAUSE_MARKER", "enter", "pause_pid", "runtime_dir"]

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
NS_GET_OWNER_UID = 0xB704  # _IO(0xb7, 0x4)
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
PAUSE_MARKER = "strata-rootless-pause"
_PAUSE_CODE = "import signal\nwhile True: signal.pause()"


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/strata``, else ``/tmp/strata-run-<uid>`` (Podman's fallback), created 0700 and
    refused unless it is a real directory of this user that nobody else may enter."""
    uid = os.getuid()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(xdg) / "strata" if xdg else Path(f"/tmp/strata-run-{uid}")
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError as e:
        raise RootlessError(f"cannot create the runtime directory {path}: {e.strerror}") from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise RootlessError(f"runtime directory {path} is not a private directory of uid {uid}: remove it")
    return path


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def pause_pid(run_dir: Path) -> int | None:
    """The recorded pause process, if the file holds a pid."""
    try:
        text = (run_dir / "pause.pid").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _is_pause(pid: int, cmdline: list[bytes]) -> bool:
    return PAUSE_MARKER.encode() in cmdline


def _is_strata(pid: int, cmdline: list[bytes]) -> bool:
    """A strata command or container monitor that runs inside the rootless namespace."""
    at = cmdline.index(b"-m") if b"-m" in cmdline else -2
    if cmdline[at + 1 : at + 2] != [b"strata"]:
        return False
    try:  # strata's rootless namespace maps its root to this user (a monitor is a fork: no env marker)
        first = Path(f"/proc/{pid}/uid_map").read_text().split()[:2]
    except OSError:
        return False
    return first == ["0", str(os.getuid())]


def _namespace_fds(pid: int, check: Callable[[int, list[bytes]], bool] = _is_pause) -> tuple[int, int] | None:
    """Descriptors of ``pid``'s user and mount namespaces when ``pid`` is a live process ``check`` accepts
    (by default: a pause process) whose user namespace this user owns and is not this process's;
    ``None`` when it is gone (or the pid is someone else's now)."""
    fds: list[int] = []
    try:
        for ns in ("user", "mnt"):
            fds.append(os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        owner = struct.unpack("I", fcntl.ioctl(fds[0], NS_GET_OWNER_UID, b"\0" * 4))[0]
        foreign = os.fstat(fds[0]).st_ino != os.stat("/proc/self/ns/user").st_ino
    except OSError:
        owner, cmdline, foreign = -1, [], False
    if owner == os.getuid() and foreign and len(fds) == 2 and check(pid, cmdline):
        return fds[0], fds[1]
    for fd in fds:
        os.close(fd)
    return None


def _survivor() -> tuple[int, int] | None:
    """The namespaces of a strata process still in the user's rootless namespace (a container's monitor)
    when the pause process was killed: joining them keeps the containers and their mounts reachable."""
    uid = os.getuid()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
        except OSError:
            continue
        fds = _namespace_fds(int(name), _is_strata)
        if fds is not None:
            return fds
    return None


def _respawn_pause(fds: tuple[int, int]) -> int:
    """A new pause process inside the namespaces ``fds`` (a survivor's); its pid."""
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child execs or exits
        os.close(ready_r)
        try:
            _join(*fds)
            pid = os.fork()
            if pid == 0:
                _exec_pause()
            os.write(ready_w, f"P{pid}".encode())
        except (OSError, RootlessError) as e:
            os.write(ready_w, f"E{e}".encode(errors="replace"))
        finally:
            os._exit(0)
    os.close(ready_w)
    try:
        answer = _read_all(ready_r).decode(errors="replace")
    finally:
        os.close(ready_r)
        os.waitpid(child, 0)
    if not answer.startswith("P"):
        raise RootlessError(f"cannot rejoin the rootless namespace: {answer[1:] or 'the helper process died'}")
    return int(answer[1:])


def _exec_pause() -> None:
    """In a forked child: become the pause process (own session, stdio on /dev/null); never returns."""
    os.setsid()
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.execv(sys.executable, [sys.executable, "-S", "-I", "-c", _PAUSE_CODE, PAUSE_MARKER])


def _pause_child(ready_w: int, go_r: int) -> None:
    """In the forked child: unshare, wait to be mapped, leave a pause process; never returns."""
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
        pid = os.fork()
        if pid == 0:
            _exec_pause()
        os.write(ready_w, f"P{pid}".encode())
        os._exit(0)
    except OSError as e:
        os.write(ready_w, f"E{e.strerror or e}".encode(errors="replace"))
    finally:
        os._exit(125)


def _write_maps(pid: int, maps: UserMaps) -> None:
    import subprocess

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


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def _spawn_pause(maps: UserMaps) -> int:
    """A new namespace with ``maps`` and its pause process; the pause process's pid."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child execs or exits
        os.close(ready_r)
        os.close(go_w)
        _pause_child(ready_w, go_r)
    os.close(ready_w)
    os.close(go_r)
    try:
        first = os.read(ready_r, 1)
        if first == b"R":
            _write_maps(child, maps)
            os.write(go_w, b"G")
        answer = (first + _read_all(ready_r)).decode(errors="replace")
    finally:
        os.close(go_w)
        os.close(ready_r)
        os.waitpid(child, 0)
    if not answer.startswith("RP"):
        detail = answer[2:] if answer.startswith("RE") else answer[1:]
        raise RootlessError(f"cannot create a user namespace: {detail or 'the helper process died'}")
    return int(answer[2:])


def _join(user_fd: int, mnt_fd: int) -> None:
    cwd = os.getcwd()
    libc = _libc()
    for fd, kind, what in ((user_fd, CLONE_NEWUSER, "user"), (mnt_fd, CLONE_NEWNS, "mount")):
        if libc.setns(fd, kind) != 0:
            err = ctypes.get_errno()
            raise RootlessError(f"cannot join the rootless {what} namespace: {os.strerror(err)}")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    try:
        os.chdir(cwd)  # joining a mount namespace moved us to its root
    except OSError as e:
        raise RootlessError(f"cannot return to {cwd} in the rootless namespace: {e.strerror}") from None


def _record(run_dir: Path, pid: int) -> None:
    tmp = run_dir / f"pause.pid.{os.getpid()}"
    tmp.write_text(f"{pid}\n")
    tmp.replace(run_dir / "pause.pid")


def enter(maps: Callable[[], UserMaps]) -> None:
    """Join this user's rootless namespace, creating it (with ``maps()``, which raises ``RootlessError``
    when the user has no subordinate ids) on first use; returns as uid 0 inside it."""
    run_dir = runtime_dir()
    with _locked(run_dir / "pause.lock"):
        pid = pause_pid(run_dir)
        fds = _namespace_fds(pid) if pid is not None else None
        survivor = _survivor() if fds is None else None
        if survivor is not None:  # the pause process was killed while containers still run: rejoin
            try:
                pid = _respawn_pause(survivor)
            finally:
                for fd in survivor:
                    os.close(fd)
            fds = _namespace_fds(pid)
            if fds is None:
                raise RootlessError("cannot rejoin the rootless namespace: the pause process died")
            _record(run_dir, pid)
        if fds is None:
            pid = _spawn_pause(maps())
            fds = _namespace_fds(pid)
            if fds is None:
                raise RootlessError("cannot create a user namespace: the pause process died")
            _record(run_dir, pid)
    try:
        _join(*fds)
    finally:
        for fd in fds:
            os.close(fd)
