"""``exec``: a new process in a running container, through ``runtime exec --detach``.

The runtime starts the process and exits; strata (a child subreaper) then reaps it and relays its
output, so a process that could not be started is told apart from one that ran: the former raises
Docker's ``OCI runtime exec failed: …`` (exit 126), the latter's exit code is returned. With ``-t``
the runtime hands over the pty master through a console socket and strata proxies the terminal.
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

from strata.container.monitor import set_subreaper, status_code, write_all
from strata.container.records import Container
from strata.container.runtime import Runtime, log_message
from strata.container.spec import RuntimeUser
from strata.container.tty import (
    ConsoleSocket,
    deferred_signals,
    fork_session,
    get_winsize,
    hold_only,
    raw_terminal,
    set_winsize,
)
from strata.errors import RuntimeFailure, StrataError

__all__ = ["ExecDetached", "ExecRequest", "exec_env", "exec_events", "run_exec"]

DRAIN_SECONDS = 2.0


@dataclass(frozen=True)
class ExecRequest:
    """What to run: argv, the whole process env, working dir, user (None = the container's), terminal modes."""

    args: list[str]
    _: KW_ONLY
    env: list[str]
    cwd: str | None
    user: RuntimeUser | None
    tty: bool
    interactive: bool
    detach: bool
    privileged: bool = False
    detach_keys: bytes = b""  # -it: the keys that leave the process running (Docker's ctrl-p,ctrl-q)


class ExecDetached(StrataError):
    """The user typed the detach keys (``docker exec -it``): the process runs on; Docker's CLI says so."""

    def __init__(self) -> None:
        super().__init__("read escape sequence")


def _process(bundle: Path, req: ExecRequest) -> dict[str, Any]:
    """The exec'd process: the container's own (capabilities, rlimits, user) with the request's argv,
    terminal, env, working dir and user (its groups replacing the container's)."""
    spec = json.loads((bundle / "config.json").read_text())
    proc: dict[str, Any] = dict(spec.get("process") or {})
    proc.pop("consoleSize", None)
    proc["args"] = list(req.args)
    proc["terminal"] = req.tty
    proc["env"] = list(req.env)
    if req.cwd:
        proc["cwd"] = req.cwd
    if req.user is not None:
        proc["user"] = {"uid": req.user.uid, "gid": req.user.gid, "additionalGids": req.user.groups()}
    if req.privileged:  # Docker's exec --privileged: every capability in four sets (not ambient)
        from strata.container.resources import all_capabilities

        caps = dict(proc.get("capabilities") or {})
        for key in ("bounding", "permitted", "inheritable", "effective"):
            caps[key] = all_capabilities()
        proc["capabilities"] = caps
    return proc


def exec_env(env_files: list[str], env: list[str]) -> Callable[[dict[str, Any], bool], list[str]]:
    """``--env-file`` and ``-e`` checked as Docker's CLI checks them (``-e =x`` refused, exit 125), then
    how to make the exec's whole environment from a container's config: the container's, the files'
    lines, then ``-e`` (a name alone takes strata's own value, or is dropped)."""
    from strata.container.spec import merge_env, process_env, read_kv_file

    for item in env:
        if item.startswith("="):
            raise StrataError(f'invalid argument "{item}" for "-e, --env" flag: invalid environment variable: '
                              f"{item}\nSee 'strata exec --help'.", exit_code=125)
    from_files = [e for f in env_files for e in read_kv_file(f, from_environ=True)]  # errors: exit 1, as Docker's
    wanted = [*from_files, *env]
    return lambda config, tty: merge_env(process_env(config, tty), wanted)


def exec_events(root: Path, c: Container, command: list[str]) -> Callable[[int], None]:
    """Docker's ``exec_create: CMD`` and ``exec_start: CMD`` events now; the returned call records
    ``exec_die`` (with the exit code) once the process ran."""
    from strata.events import record_container

    exec_id = os.urandom(32).hex()
    labels = c.config.get("Labels")
    text = f"{command[0]} {' '.join(command[1:])}"
    for action in (f"exec_create: {text}", f"exec_start: {text}"):
        record_container(root, action, c.id, c.name, c.image_name, labels, {"execID": exec_id})
    return lambda code: record_container(root, "exec_die", c.id, c.name, c.image_name, labels,
                                         {"execID": exec_id, "exitCode": str(code)})


def _argv(runtime: Runtime, cid: str, req: ExecRequest, scratch: Path, console: Path | None, bundle: Path) -> list[str]:
    (scratch / "process.json").write_text(json.dumps(_process(bundle, req)))
    argv = ["exec", "--detach", "--pid-file", str(scratch / "pid"), "--process", str(scratch / "process.json")]
    if console is not None:
        argv += ["--console-socket", str(console)]
    return [runtime.binary, "--root", str(runtime.state_root), "--log", str(scratch / "log"),
            "--log-format", "json", *argv, cid]


def _failed(scratch: Path, stderr_text: str) -> RuntimeFailure:
    msg = log_message(scratch / "log", stderr_text)
    return RuntimeFailure(f"OCI runtime exec failed: {msg}: unknown", exit_code=126)


def run_exec(runtime: Runtime, cid: str, bundle: Path, req: ExecRequest,
             on_exit: Callable[[int], None] | None = None) -> int:
    """Run ``req`` in container ``cid`` (whose bundle is ``bundle``); returns its exit code (0 at once for
    ``detach``) and calls ``on_exit`` with it once the process ended (``-d``, ``-t``: from a watcher that
    outlives this command)."""
    set_subreaper()
    scratch = Path(tempfile.mkdtemp(prefix="strata-exec-"))
    try:
        if req.detach:
            return _exec_detached(runtime, cid, req, scratch, bundle, on_exit)
        if req.tty:  # its watcher calls on_exit, the detach keys typed or not
            return _exec_tty(runtime, cid, req, scratch, bundle, on_exit)
        code = _exec_plain(runtime, cid, req, scratch, bundle)
        if on_exit is not None:
            on_exit(code)
        return code
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _exec_detached(runtime: Runtime, cid: str, req: ExecRequest, scratch: Path, bundle: Path,
                   on_exit: Callable[[int], None] | None) -> int:
    """Docker's ``exec -d`` (``-t`` too: the daemon gives the process a terminal nobody reads): a watcher in
    a session of its own starts the process, reports how the start went (an error: the runtime's words),
    then outlives this command to reap the process and call ``on_exit`` with its exit code."""
    with deferred_signals():  # a ^C now comes once the watcher is done with the scratch directory
        report = _watcher(lambda w: _watch_detached(runtime, cid, req, scratch, bundle, on_exit, w))
        with os.fdopen(report, "rb") as f:
            text = f.read()  # until the watcher closes its end: the process started, or why not
    if text != b"S":
        raise RuntimeFailure(text.decode(errors="replace")[1:] or "OCI runtime exec failed: unknown", exit_code=126)
    return 0


def _watcher(work: Callable[[int], None]) -> int:
    """A child in a session of its own (no terminal's hangup or ^C reaches it), a subreaper (the process
    the runtime leaves behind becomes its child), running ``work(fd)``; returns the read end of ``fd``."""
    report_r, report_w = os.pipe()
    if fork_session() == 0:  # the user's ^C at this moment does not stop the start half-way
        os.close(report_r)
        status = 1
        try:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            set_subreaper()
            work(report_w)
            status = 0
        finally:
            os._exit(status)
    os.close(report_w)
    return report_r


def _watch_detached(runtime: Runtime, cid: str, req: ExecRequest, scratch: Path, bundle: Path,
                    on_exit: Callable[[int], None] | None, report: int) -> None:
    """Start the process (``S`` reported, or ``E`` and why not), then reap it and call ``on_exit``."""
    try:
        pid, master = _start_detached(runtime, cid, req, scratch, bundle)
    except RuntimeFailure as e:
        os.write(report, b"E" + str(e).encode())
        os.close(report)
        return
    os.write(report, b"S")
    os.close(report)
    code = _wait_draining(pid, master)
    if on_exit is not None:
        on_exit(code)


def _start_detached(runtime: Runtime, cid: str, req: ExecRequest, scratch: Path, bundle: Path) -> tuple[int, int | None]:
    """The runtime started with nothing attached (``-t``: the pty master kept): (pid, master)."""
    if not req.tty:
        proc = subprocess.run(_argv(runtime, cid, req, scratch, None, bundle), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            raise _failed(scratch, proc.stderr.decode(errors="replace"))
        return int((scratch / "pid").read_text().strip()), None
    with ConsoleSocket() as console:
        started = subprocess.Popen(_argv(runtime, cid, req, scratch, console.path, bundle), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            master = console.receive(lambda: started.poll() is None)
        except RuntimeFailure:
            raise _failed(scratch, started.communicate()[1].decode(errors="replace")) from None
        errors = started.communicate()[1].decode(errors="replace")
        if started.returncode != 0:
            os.close(master)
            raise _failed(scratch, errors)
    return int((scratch / "pid").read_text().strip()), master


def _wait_draining(pid: int, master: int | None) -> int:
    """Wait for ``pid`` (a child) to exit, reading and dropping what it writes to its terminal meanwhile."""
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            ready, _, _ = select.select([pidfd, *([master] if master is not None else [])], [], [])
            if pidfd in ready:
                return status_code(os.waitpid(pid, 0)[1])
            if master is not None and not _drained(master):  # EIO: no slave open (the terminal closed)
                os.close(master)
                master = None
    finally:
        os.close(pidfd)
        if master is not None:
            os.close(master)


def _drained(fd: int) -> bool:
    """Read and drop what ``fd`` holds; False at its end (or EIO: a pty master without a slave)."""
    try:
        return bool(os.read(fd, 65536))
    except OSError:
        return False


def _exec_plain(runtime: Runtime, cid: str, req: ExecRequest, scratch: Path, bundle: Path) -> int:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        started = subprocess.run(
            _argv(runtime, cid, req, scratch, None, bundle), stdin=None if req.interactive else subprocess.DEVNULL,
            stdout=out_w, stderr=err_w, check=False,
        )
    finally:
        os.close(out_w)
        os.close(err_w)
    if started.returncode != 0:  # nothing ran: what the pipes hold is the runtime's own complaint
        os.set_blocking(err_r, False)
        try:
            text = os.read(err_r, 65536).decode(errors="replace")
        except BlockingIOError:
            text = ""
        os.close(out_r)
        os.close(err_r)
        raise _failed(scratch, text)
    pid = int((scratch / "pid").read_text().strip())
    pidfd = os.pidfd_open(pid)
    try:
        return _relay(pidfd, lambda: status_code(os.waitpid(pid, 0)[1]), {out_r: 1, err_r: 2}, stdin=None,
                      master=None)
    finally:
        os.close(pidfd)


def _exec_tty(runtime: Runtime, cid: str, req: ExecRequest, scratch: Path, bundle: Path,
              on_exit: Callable[[int], None] | None) -> int:
    """``exec -t``: the runtime, run by a watcher, hands the pty master to this command, which proxies the
    terminal; the watcher reaps the process, calls ``on_exit`` and reports the code -- after the detach
    keys too, when this command is long gone (Docker's ``exec_die`` then)."""
    with ConsoleSocket() as console, deferred_signals():  # a ^C comes once the watcher has read the pid file
        path = console.path
        report = _watcher(lambda w: _watch_tty(runtime, cid, req, scratch, bundle, path, on_exit, w))
        try:
            try:
                master = console.receive(lambda: not select.select([report], [], [], 0)[0])
            except RuntimeFailure:
                raise _reported_failure(report) from None
            if os.read(report, 1) != b"S":  # the runtime is done: started, or why not
                os.close(master)
                raise _reported_failure(report)
        except BaseException:
            os.close(report)
            raise
    size = get_winsize(1)
    if size:
        set_winsize(master, *size)
    old = signal.signal(signal.SIGWINCH, lambda s, f: set_winsize(master, *(get_winsize(1) or (24, 80))))
    try:
        with raw_terminal(0) if req.interactive else nullcontext():
            return _relay(report, lambda: _reported_code(report), {master: 1}, stdin=0 if req.interactive else None,
                          master=master, keys=req.detach_keys if req.interactive else b"")
    finally:
        signal.signal(signal.SIGWINCH, old)
        os.close(report)


def _watch_tty(runtime: Runtime, cid: str, req: ExecRequest, scratch: Path, bundle: Path, console: Path,
               on_exit: Callable[[int], None] | None, report: int) -> None:
    """The watcher of ``exec -t``: the runtime's start (``S``, or ``E`` and why not), then the exit code."""
    proc = subprocess.Popen(_argv(runtime, cid, req, scratch, console, bundle), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    errors = proc.communicate()[1].decode(errors="replace")
    if proc.returncode != 0:
        os.write(report, b"E" + str(_failed(scratch, errors)).encode())
        return
    pid = int((scratch / "pid").read_text().strip())
    os.write(report, b"S")
    code = status_code(os.waitpid(pid, 0)[1])
    if on_exit is not None:
        on_exit(code)
    os.write(report, str(code).encode())


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    return data


def _reported_failure(report: int) -> RuntimeFailure:
    text = _read_all(report).decode(errors="replace").removeprefix("E")
    return RuntimeFailure(text or "OCI runtime exec failed: unknown", exit_code=126)


def _reported_code(report: int) -> int:
    text = _read_all(report)
    return int(text) if text.isdigit() else 1


def _relay(ended: int, reap: Callable[[], int], outputs: dict[int, int], *, stdin: int | None, master: int | None,
           keys: bytes = b"") -> int:
    """Copy outputs (and stdin to the pty master) until the process ended (``ended`` readable; ``reap()``
    its code) and its outputs close (or go quiet for DRAIN_SECONDS after the exit: a background child may
    hold them open); ``keys`` typed: the process is left running (``ExecDetached``)."""
    from strata.container.attach import EscapeProxy

    escape = EscapeProxy(keys) if keys and master is not None else None
    pidfd = ended
    code: int | None = None
    deadline = 0.0
    try:
        while outputs:
            watch = [*outputs, *([pidfd] if code is None else []), *([stdin] if stdin is not None else [])]
            timeout = None if code is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select(watch, [], [], timeout)
            if not ready and code is not None:
                break
            for fd in ready:
                if fd == pidfd:
                    code = reap()
                    deadline = time.monotonic() + DRAIN_SECONDS
                elif fd == stdin:
                    data = os.read(stdin, 65536)
                    sent, detached = escape.feed(data) if escape is not None else (data, False)
                    if sent and master is not None:
                        write_all(master, sent)
                    if detached and master is not None:
                        _keep_terminal(master)
                        raise ExecDetached()
                    if not data:
                        stdin = None
                elif not _copy(fd, outputs[fd]):
                    os.close(fd)
                    del outputs[fd]
    finally:
        for fd in outputs:
            os.close(fd)
    return reap() if code is None else code


def _keep_terminal(master: int) -> None:
    """As Docker's daemon keeps a detached exec's terminal: a child of its own session holds the pty
    master (its output drained) until the last process on the terminal is gone, so none gets SIGHUP."""
    if fork_session() != 0:
        return
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        hold_only(master)  # not the terminal guard's pipe: a killed front's terminal is still given back
        while os.read(master, 65536):
            pass
    except OSError:
        pass
    finally:
        os._exit(0)


def _copy(src: int, dst: int) -> bool:
    try:
        data = os.read(src, 65536)
    except OSError as e:
        if e.errno == errno.EIO:  # pty: the last slave fd closed
            return False
        raise
    if not data:
        return False
    write_all(dst, data)
    return True
