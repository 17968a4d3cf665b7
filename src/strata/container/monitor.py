"""Running one container to its end: create + start through the runtime, pump its I/O into the
json-file log (and the user's terminal when attached), reap it, record its exit code.

strata has no daemon. The process that runs a container becomes a child subreaper, so the
container's init process (orphaned when ``runc create`` exits) is re-parented to it and its exit
status can be collected with ``waitpid``. Attached runs do this in the strata process itself;
``run -d`` and ``start`` double-fork a small monitor process that does the same detached.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import signal
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager

from strata.container.isolation import release_shm
from strata.container.records import Container, ContainerStore, container_dir, process_start
from strata.container.rootfs import Rootfs
from strata.errors import RuntimeFailure, StrataError

# A build step's run (output to a sink, no terminal, no health check, no network to tear down, no
# volumes) loads none of the attach hub (socket), the json-file log, the health probes, the network
# endpoints, the terminal helpers, the volumes, dataclasses or typing: each comes with what uses it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from types import FrameType

    from strata.container.attach import AttachHub
    from strata.container.health import HealthMonitor
    from strata.container.logs import JsonLogWriter
    from strata.container.network.endpoints import Pending
    from strata.container.runtime import Runtime

__all__ = [
    "EXIT_FILE",
    "Attach",
    "log_path",
    "read_exit_file",
    "reserve_exit_file",
    "restart_delay",
    "run_attached",
    "spawn_monitor",
    "spawn_restarter",
    "supervise",
    "write_exit_file",
]

PR_SET_CHILD_SUBREAPER = 36
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class Attach:
    """Where an attached container's streams go; all None for a detached monitor. ``sink(stream, data)``:
    a caller in this process takes the output itself (a build step: no attach socket is served, and
    the runtime's record of the exited container is left to the container's removal)."""

    __slots__ = ("sink", "stderr", "stdin", "stdout")

    def __init__(self, stdin: int | None = None, stdout: int | None = None, stderr: int | None = None, *,
                 sink: Callable[[str, bytes], None] | None = None) -> None:
        self.stdin, self.stdout, self.stderr, self.sink = stdin, stdout, stderr, sink

    def __repr__(self) -> str:
        return f"Attach(stdin={self.stdin!r}, stdout={self.stdout!r}, stderr={self.stderr!r}, sink={self.sink!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Attach:
            return NotImplemented
        return (self.stdin, self.stdout, self.stderr, self.sink) == (other.stdin, other.stdout, other.stderr, other.sink)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it was


class _NoLog:
    """The log of a run whose output nobody keeps (a build step's: the container is removed right after),
    as a disabled ``JsonLogWriter`` is, without loading the log module."""

    def write(self, stream: str, data: bytes) -> None:
        """Nothing kept."""

    def close(self) -> None:
        """Nothing open."""


def log_path(root: Path, cid: str) -> Path:
    return container_dir(root, cid) / f"{cid}-json.log"


def _log_writer(root: Path, c: Container) -> JsonLogWriter:
    from strata.container.logs import JsonLogWriter

    return JsonLogWriter.for_container(log_path(root, c.id), c.config, c.host_config)


def set_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        except OSError:
            return
        view = view[n:]


def status_code(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return 255


class _Run:
    """State of one supervised container run."""

    def __init__(self, store: ContainerStore, c: Container, runtime: Runtime, attach: Attach,
                 ready: Callable[[], None] | None = None, pipes: tuple[int, int, int, int] | None = None) -> None:
        self.pipes = pipes  # (out_r, out_w, err_r, err_w) made by the keeper, which holds the read ends too
        self.ready = ready  # the network setup, waited for before the container starts
        self.store = store
        self.c = c
        self.runtime = runtime
        self.attach = attach
        self.cdir = container_dir(store.root, c.id)
        self.tty = bool(c.config.get("Tty"))
        # a build step's output goes to its sink: no log kept (the container is removed right after)
        self.log: JsonLogWriter | _NoLog = _NoLog() if attach.sink is not None else _log_writer(store.root, c)
        self.master: int | None = None
        self.outputs: dict[int, str] = {}
        self.pid = 0
        self.init_exe: str | None = None  # the runtime's init, until it execs the container's process
        self.hub: AttachHub | None = None  # a detached run's attach socket (container.attach)
        self.front: int | None = None  # a pidfd of the strata process in front of an attached run
        self.restarts = False  # a restart loop follows this run (see _after_exit)
        self.front_lost: Callable[[], None] = lambda: None  # gives the user's terminal back

    def create(self) -> None:
        pid_file = self.cdir / "pid"
        rt_log = self.cdir / "runtime.log"
        for p in (pid_file, rt_log):
            p.unlink(missing_ok=True)
        self.runtime.delete(self.c.id, force=True)  # a stale runtime record from an earlier run
        if self.tty:
            from strata.container.tty import ConsoleSocket

            with ConsoleSocket() as console:
                proc = self.runtime.create(
                    self.c.id, self.cdir, pid_file=pid_file, log_file=rt_log, console_socket=console.path,
                    stderr=subprocess.PIPE,
                )
                try:
                    self.master = console.receive(lambda: proc.poll() is None)
                except RuntimeFailure:
                    proc.wait()
                    raise self.runtime.create_failed(rt_log, self._stderr(proc)) from None
                self._finish_create(proc, rt_log)
            os.set_blocking(self.master, False)
            self.outputs[self.master] = "stdout"
            return
        out_r, out_w, err_r, err_w = self.pipes or (*os.pipe(), *os.pipe())
        self.pipes = None  # a restart makes its own
        stdin = self.attach.stdin if (self.attach.stdin is not None and self.c.config.get("OpenStdin")) else None
        if stdin is None and self.hub is not None and self.c.config.get("OpenStdin"):
            stdin, self.hub.stdin_w = os.pipe()  # what attached clients type
        try:
            proc = self.runtime.create(
                self.c.id, self.cdir, pid_file=pid_file, log_file=rt_log, stdin=stdin, stdout=out_w, stderr=err_w
            )
        finally:
            os.close(out_w)
            os.close(err_w)
            if self.hub is not None and stdin is not None and stdin != self.attach.stdin:
                os.close(stdin)
        self.outputs = {out_r: "stdout", err_r: "stderr"}
        for fd in self.outputs:
            os.set_blocking(fd, False)
        self._finish_create(proc, rt_log)

    @staticmethod
    def _stderr(proc: subprocess.Popen[bytes]) -> str:
        if proc.stderr is None:
            return ""
        return proc.stderr.read().decode(errors="replace")

    def _finish_create(self, proc: subprocess.Popen[bytes], rt_log: Path) -> None:
        rc = proc.wait()
        if rc != 0:
            raise self.runtime.create_failed(rt_log, self._stderr(proc))
        if proc.stderr is not None:
            proc.stderr.close()
        self.pid = int((self.cdir / "pid").read_text().strip())
        self.init_exe = _exe(self.pid)

    def start(self) -> None:
        """Record the container as running, then let it run: once it runs it may fill the disk, and
        its record must not need space any more (only the exit is written later, with a fallback)."""
        if self.ready is not None:
            try:
                self.ready()
            except StrataError:
                self.runtime.delete(self.c.id, force=True)
                raise
        reserve_exit_file(self.cdir)
        self.c = self.store.update(
            self.c.id, state="running", pid=self.pid, monitor_pid=os.getpid(),
            monitor_start=process_start(os.getpid()), started_at=time.time(),
            finished_at=0.0, exit_code=0, error="",
        )
        try:
            self.runtime.start(self.c.id)
        except RuntimeFailure:
            self.runtime.delete(self.c.id, force=True)
            raise
        _await_exec(self.pid, self.init_exe)
        self._event("start")

    def _forward_output(self, fd: int) -> bool:
        """Copy what is readable on ``fd``; False at end of stream."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError as e:
            if e.errno == errno.EIO:  # pty: every slave fd closed
                return False
            raise
        if not data:
            return False
        stream = self.outputs[fd]
        self.log.write(stream, data)
        if self.hub is not None:
            self.hub.broadcast(stream, data)
        if self.attach.sink is not None:
            self.attach.sink(stream, data)
        target = self.attach.stderr if stream == "stderr" else self.attach.stdout
        if target is not None:
            write_all(target, data)
        return True

    def pump(self) -> int:
        """Move data until the container exits and its outputs close; returns its exit code."""
        pidfd = os.pidfd_open(self.pid)
        stdin = self.attach.stdin if (self.tty and self.c.config.get("OpenStdin")) else None
        exit_code: int | None = None
        drain_deadline = 0.0
        try:
            while self.outputs or exit_code is None:
                watch = [*self.outputs, *([self.front] if self.front is not None else [])]
                if exit_code is None:
                    watch.append(pidfd)
                    if stdin is not None:
                        watch.append(stdin)
                    if self.hub is not None:
                        watch += self.hub.fds()
                timeout = None if exit_code is None else max(0.0, drain_deadline - time.monotonic())
                ready, _, _ = select.select(watch, [], [], timeout)
                if not ready and exit_code is not None:
                    break
                for fd in ready:
                    if fd == pidfd:
                        _, status = os.waitpid(self.pid, 0)
                        exit_code = status_code(status)
                        drain_deadline = time.monotonic() + 2.0
                    elif fd == stdin:
                        stdin = self._forward_input(stdin)
                    elif self.hub is not None and self.hub.owns(fd):
                        self.hub.ready(fd, self.master, self.pid)
                    elif fd == self.front:
                        self._lose_front()
                        stdin = None
                    elif not self._forward_output(fd):
                        if fd != self.master:
                            os.close(fd)
                        del self.outputs[fd]
        finally:
            os.close(pidfd)
            if self.front is not None:
                os.close(self.front)
                self.front = None
            for fd in list(self.outputs):
                if fd != self.master:
                    os.close(fd)
            self.outputs.clear()
            self.log.close()
        return exit_code if exit_code is not None else 255

    def _lose_front(self) -> None:
        """The strata process in front was killed: the container goes on, logged only, and the user's
        terminal is left as it was."""
        if self.front is not None:
            os.close(self.front)
            self.front = None
        self.front_lost()
        held = self.attach  # the monitor's copies of the user's streams: a reader of them sees their end
        for fd in {fd for fd in (held.stdin, held.stdout, held.stderr) if fd is not None}:
            os.close(fd)
        held.stdin = held.stdout = held.stderr = None

    def _forward_input(self, stdin: int) -> int | None:
        try:
            data = os.read(stdin, 65536)
        except OSError:
            data = b""
        if not data:
            if self.master is not None:
                write_all(self.master, b"\x04")  # EOF on a non-terminal stdin: send ^D
            return None
        if self.master is not None:
            write_all(self.master, data)
        return stdin

    def resize(self) -> None:
        if self.master is None or self.attach.stdout is None:
            return
        from strata.container.tty import get_winsize, set_winsize

        size = get_winsize(self.attach.stdout)
        if size:
            set_winsize(self.master, *size)

    def _event(self, action: str, **extra: str) -> None:
        from strata.events import record_container

        c = self.store.by_id(self.c.id) or self.c  # renamed since it started: the name now, as Docker's
        record_container(self.store.root, action, c.id, c.name, c.image_name, c.config.get("Labels"), extra)

    def finish(self, exit_code: int) -> Container | None:
        """Record the exit, release the runtime record and the rootfs mount; --rm removes everything."""
        self._event("die", exitCode=str(exit_code))
        if self.master is not None:
            os.close(self.master)
            self.master = None
        unmounted = False

        def unmount() -> None:  # while netavark tears the network down
            nonlocal unmounted
            unmounted = True
            if self.attach.sink is None:  # a build step's: ``runc delete`` when it is removed, off its path
                self.runtime.delete(self.c.id, force=True)
            try:
                Rootfs(self.cdir, self.c.driver).unmount()
                release_shm(self.cdir)  # a shareable IPC's /dev/shm, as Docker's cleanup at stop
            except (StrataError, OSError):
                pass

        try:
            self._release_network(unmount)
        except StrataError:  # a full disk: the next command's reconcile tears it down
            pass
        if not unmounted:
            unmount()
        if self.c.mounts:
            from strata.container.volumes import log_mounts

            log_mounts(self.store.root, self.c.id, self.c.mounts, "unmount")
        finished = time.time()
        try:
            return self.store.update(self.c.id, exit_code=exit_code, finished_at=finished, pid=0,
                                     **self._after_exit(exit_code, finished))
        except StrataError:  # a full disk: the reserved file keeps the exit for the next command
            write_exit_file(self.cdir, exit_code, finished)
            return None


    def _release_network(self, unmount: Callable[[], None]) -> None:
        """The network torn down (``unmount`` run meanwhile); a run that never had a namespace, address or
        port (``--network none``, a build step) has nothing to undo: ``unmount`` alone, as teardown_network
        does then, without loading the network endpoints."""
        cur = self.store.by_id(self.c.id) or self.c
        if not cur.netns and not cur.ports and not any(ep.get("IPAddress") for ep in cur.networks.values()):
            unmount()
            return
        from strata.container.network.endpoints import forget, teardown_network
        from strata.container.network.release import release_in_background

        if self.c.host_config.get("AutoRemove") and release_in_background(
                self.store, self.store.by_id(self.c.id) or self.c, forget) is not None:
            return  # removed anyway: a detached child finishes netavark's teardown, holding the lock
        teardown_network(self.store, self.c, during=unmount)

    def _after_exit(self, exit_code: int, finished: float) -> dict[str, object]:
        """``restarting`` at once (this monitor stays) when a restart loop follows and the policy restarts
        this exit, as Docker's daemon records it: never ``exited`` in between, which ``ps`` or ``wait`` of
        a crash loop could see; else ``exited``."""
        cur = self.store.by_id(self.c.id) if self.restarts else None
        if cur is not None and restart_delay(dict(cur.host_config.get("RestartPolicy") or {}), exit_code,
                                             cur.restart_count, finished - cur.started_at, 0.0,
                                             cur.manually_stopped) is not None:
            return {"state": "restarting", "restart_count": cur.restart_count + 1}
        return {"state": "exited", "monitor_pid": 0}


EXIT_FILE = "exit"
_EXIT_WIDTH = 64


def reserve_exit_file(cdir: Path) -> None:
    """Allocate the file the exit status goes to when the records cannot be written (a full disk):
    overwriting bytes already on disk needs no new space."""
    try:
        fd = os.open(cdir / EXIT_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        os.write(fd, b" " * _EXIT_WIDTH)
        os.fsync(fd)
    except OSError:  # best effort: without it a lost exit is recorded as 255
        pass
    finally:
        os.close(fd)


def write_exit_file(cdir: Path, exit_code: int, finished_at: float) -> None:
    try:
        fd = os.open(cdir / EXIT_FILE, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.pwrite(fd, f"{exit_code} {finished_at!r}".encode().ljust(_EXIT_WIDTH)[:_EXIT_WIDTH], 0)
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_exit_file(cdir: Path) -> tuple[int, float] | None:
    """(exit code, finish time) a monitor left when it could not record them, else None."""
    try:
        code, when = (cdir / EXIT_FILE).read_text().split()
        return int(code), float(when)
    except (OSError, ValueError):
        return None


def supervise(
    store: ContainerStore,
    c: Container,
    runtime: Runtime,
    attach: Attach,
    on_started: Callable[[str | None], None] = lambda err: None,
    remove: Callable[[Container], None] | None = None,
    ready: Callable[[], None] | None = None,
    pipes: tuple[int, int, int, int] | None = None,
    client: socket.socket | None = None,
    front: int = 0,
    restarts: bool = False,
) -> int:
    """Run a created container (bundle written, rootfs mounted) to its end; returns its exit code.

    ``on_started`` is told ``None`` once the container runs, or the error text if it never did.
    ``remove`` (for ``--rm``) is called with the final record after the exit is recorded. A detached
    run serves attach clients (``client``: one connected from the start, as ``run -it``'s).
    ``front``: the pid of the strata process the user runs it from; when it dies the streams detach.
    ``restarts``: a restart loop follows (an exit the policy restarts is recorded as ``restarting``).
    """
    set_subreaper()
    run = _Run(store, c, runtime, attach, ready, pipes)
    run.restarts = restarts
    if attach.stdout is None and attach.sink is None:
        from strata.container.attach import AttachHub

        run.hub = AttachHub(run.cdir, client)
    try:
        run.create()
        run.start()
    except StrataError as e:
        if run.hub is not None:
            run.hub.close(None)
        if ready is not None:  # the runtime failed first: let the network setup finish, then undo it
            try:
                ready()
            except StrataError:
                pass
        _record_start_failure(store, run, c, e)
        on_started(json.dumps({"error": str(e), "exit_code": e.exit_code}))
        if remove is not None:
            remove(store.by_id(c.id) or c)
        raise
    on_started(None)
    health = _health(store.root, c, runtime)
    if health is not None:
        health.start()
    raw_fd = attach.stdin if (run.tty and attach.stdin is not None and c.config.get("OpenStdin")) else None
    try:
        with _signals_forwarded(run, attach), ExitStack() as terminal:
            if front:
                run.front = _pidfd(front)
                run.front_lost = terminal.close
                if run.front is None:  # killed while the container started
                    run._lose_front()
            if raw_fd is not None and (run.front is not None or not front):
                from strata.container.tty import raw_terminal

                terminal.enter_context(raw_terminal(raw_fd))
            code = run.pump()
    finally:
        if health is not None:
            health.stop()
    final = run.finish(code)
    if remove is not None and final is not None:
        remove(final)
    if run.hub is not None:
        run.hub.close(code)
    return code


def _health(root: Path, c: Container, runtime: Runtime, since: float | None = None) -> HealthMonitor | None:
    """The health probes of a container with a health check (without one: none, nothing loaded)."""
    if not c.config.get("Healthcheck"):
        return None
    from strata.container.health import HealthMonitor

    return HealthMonitor(root, c.id, c.config, runtime, since=since)


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _await_exec(pid: int, init: str | None, limit: float = 30.0) -> None:
    """Until the runtime's init (``init``: its executable) has exec'd the container's process: ``runc
    start`` is done once the init has read its go-ahead, a moment before its ``execve``. A signal sent in
    between (the user's ^C an attached run forwards as the container starts, a ``kill`` right after
    ``start``) reached the init, which died of it (runc's Go runtime: exit 2), not the process."""
    if init is None:
        return
    deadline = time.monotonic() + limit
    pause = 0.0005
    while _exe(pid) == init and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def _record_start_failure(store: ContainerStore, run: _Run, c: Container, e: StrataError) -> None:
    """A container that never ran: unmount it and record the error against its record ``c`` as it
    was before the attempt (still ``created`` stays ``created``; otherwise ``exited`` with the
    error's exit code)."""
    run.log.close()
    from strata.container.network.endpoints import teardown_network

    teardown_network(store, c)
    try:
        Rootfs(run.cdir, c.driver).unmount()
    except StrataError:
        pass
    store.update(c.id, state="created" if c.state == "created" else "exited", error=str(e),
                 exit_code=e.exit_code if c.state != "created" else c.exit_code, pid=0, monitor_pid=0,
                 started_at=c.started_at, finished_at=c.finished_at if c.state == "created" else time.time())


@contextmanager
def _signals_forwarded(run: _Run, attach: Attach) -> Iterator[None]:
    """While attached: forward the user's signals to the container and its terminal size to its pty."""
    old: dict[signal.Signals, object] = {}

    def forward(signum: int, frame: FrameType | None) -> None:
        try:
            os.kill(run.pid, signum)
        except OSError:
            pass

    def winch(signum: int, frame: FrameType | None) -> None:
        run.resize()

    if attach.stdout is not None:
        for sig in _FORWARDED:
            old[sig] = signal.signal(sig, forward)
        if run.tty:
            old[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, winch)
            run.resize()
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def spawn_monitor(
    store: ContainerStore,
    c: Container,
    runtime: Runtime,
    remove: Callable[[ContainerStore, Container], None] | None = None,
    again: Again | None = None,
    client: tuple[socket.socket, socket.socket] | None = None,
) -> None:
    """Double-fork a detached monitor for ``c`` and wait until the container runs (or failed); the
    monitor then applies the restart policy, preparing each new run through ``again``. ``client``:
    a socket pair whose first end the monitor serves as an attach client (the second is the caller's).

    The store's SQLite connection is closed across the fork: the monitor opens its own."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    from strata.container.tty import fork_session

    with store.released():
        pid = fork_session()  # no ^C or hang-up of the user's terminal stops the start half-way
        if pid == 0:  # intermediate
            try:
                os.close(r)
                if os.fork() != 0:
                    os._exit(0)
                _keeper_main(store.root, c, runtime, w, remove, again, client)
            finally:
                os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _check_started(b"".join(chunks).decode())


def _check_started(text: str) -> None:
    """The monitor's first report: ``ok``, or why the container did not start (raised)."""
    if text.strip() == "ok":
        return
    if not text.strip():
        raise RuntimeFailure("the container monitor exited before the container started")
    try:
        info = json.loads(text)
        message, code = str(info["error"]), int(info.get("exit_code", 125))
    except (ValueError, TypeError, KeyError):  # not the monitor's report: say what it wrote
        message, code = f"the container monitor failed: {text.strip()}", 125
    raise RuntimeFailure(message, exit_code=code)


def run_attached(store: ContainerStore, c: Container, runtime: Runtime, attach: Attach,
                 remove: Callable[[ContainerStore, Container], None] | None, again: Again | None) -> int | None:
    """Run ``c`` attached to this process's streams, under a detached keeper and monitor as ``run -d``
    does, so the container outlives this process: killed, it leaves the container running, logged, its
    exit recorded and its policy applied. Returns the exit code of the first run, or None when the
    monitor died before saying it (the keeper records it)."""
    r, w = os.pipe()
    front = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    with _Forwarder() as forwarder:
        from strata.container.tty import fork_session

        with store.released():
            pid = fork_session()  # no signals from the user's terminal: this process forwards them
            if pid == 0:  # intermediate
                try:
                    forwarder.restore()
                    os.close(r)
                    if os.fork() != 0:
                        os._exit(0)
                    held = Attach(*(os.dup(fd) if fd is not None else None  # above 0-2: they go to /dev/null
                                    for fd in (attach.stdin, attach.stdout, attach.stderr)))
                    _keeper_main(store.root, c, runtime, w, remove, again, attach=held, front=front)
                finally:
                    os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        with os.fdopen(r, "rb") as reports:
            first = reports.readline()
            if first != b"ok\n":
                _check_started((first + reports.read()).decode())
            cur = store.by_id(c.id) or c
            forwarder.target(cur.pid, cur.monitor_pid)
            last = reports.readline()
    try:
        return int(last)
    except ValueError:
        return None


class _Forwarder:
    """While attached, the user's signals go to the container and a resized terminal to its monitor
    (which holds the pty); what arrives before the container runs is delivered once it does."""

    def __init__(self) -> None:
        self.pid = self.monitor = 0
        self.pending: list[int] = []
        self.old: dict[signal.Signals, object] = {}

    def __enter__(self) -> _Forwarder:
        self.old = {sig: signal.signal(sig, self._handle) for sig in (*_FORWARDED, signal.SIGWINCH)}
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self.old = {}

    def target(self, pid: int, monitor: int) -> None:
        self.pid, self.monitor = pid, monitor
        pending, self.pending = self.pending, []
        for signum in pending:
            self._handle(signum, None)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        to = self.monitor if signum == signal.SIGWINCH else self.pid
        if to <= 0:  # not running yet (and never kill(0): that is our own process group)
            self.pending.append(signum)
            return
        try:
            os.kill(to, signum)
        except OSError:
            pass


def _note(store_root: Path, cid: str, e: BaseException) -> None:
    """Keep a detached monitor's failure in the container dir (it has no terminal to print to)."""
    import traceback

    try:
        with open(container_dir(store_root, cid) / "monitor.log", "a") as f:
            f.write("".join(traceback.format_exception(e)))
    except OSError:
        pass


def _monitor_main(
    store_root: Path,
    c: Container,
    runtime: Runtime,
    report_fd: int,
    remove: Callable[[ContainerStore, Container], None] | None,
    again: Again | None = None,
    pipes: tuple[int, int, int, int] | None = None,
    client: socket.socket | None = None,
    attach: Attach | None = None,
    front: int = 0,
) -> None:
    _detach_stdio()
    reporter = _Reporter(report_fd, attached=attach is not None)
    report = reporter.started
    store = ContainerStore(store_root)
    try:
        code = supervise(
            store, c, runtime, attach or Attach(), report,
            remove=(lambda final: remove(store, final)) if remove is not None else None, pipes=pipes,
            client=client, front=front, restarts=again is not None,
        )
        for fd in {fd for fd in (attach.stdin, attach.stdout, attach.stderr) if fd is not None} if attach else ():
            os.close(fd)  # a reader of the user's stdout sees its end now
        reporter.exited(code)
        if again is not None:
            _restart_loop(store, c.id, runtime, again, code)
    except BaseException as e:
        _note(store_root, c.id, e)
        report(json.dumps({"error": f"container monitor failed: {e}", "exit_code": 125}))
    finally:
        store.close()


class _Reporter:
    """The monitor's reports to the strata process that started it: ``ok`` (or the error) once the
    container runs; for an attached run then ``ok\\n`` and the first run's exit code, a line each."""

    def __init__(self, fd: int, attached: bool) -> None:
        self.fd: int | None = fd
        self.attached = attached

    def _write(self, data: bytes, close: bool) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, data)
        except OSError:
            pass
        if close:
            os.close(self.fd)
            self.fd = None

    def started(self, err: str | None) -> None:
        if err is not None:
            self._write(err.encode(), close=True)
        else:
            self._write(b"ok\n" if self.attached else b"ok", close=not self.attached)

    def exited(self, code: int) -> None:
        self._write(f"{code}\n".encode(), close=True)


if TYPE_CHECKING:
    Again = Callable[[ContainerStore, Container], tuple[Container, Pending]]
_BACKOFF_START = 0.1  # Docker's restart manager: 100 ms, doubled each time, back to 100 ms after 10 s up
_BACKOFF_MAX = 60.0


def restart_delay(policy: dict[str, object], exit_code: int, restart_count: int, ran_for: float,
                  previous: float, manually_stopped: bool) -> float | None:
    """Docker's ``ShouldRestart``: the back-off before the next run, or None when the policy says no."""
    timeout = 0.0 if ran_for >= 10 else previous
    timeout = _BACKOFF_START if timeout == 0 else min(timeout * 2, _BACKOFF_MAX)
    name = str(policy.get("Name") or "no")
    if manually_stopped:
        return None
    if name in ("always", "unless-stopped"):
        return timeout
    limit = policy.get("MaximumRetryCount") or 0
    if name == "on-failure" and exit_code != 0 and (not limit or restart_count < int(str(limit))):
        return timeout
    return None


def _restart_loop(store: ContainerStore, cid: str, runtime: Runtime, again: Again, code: int) -> None:
    """Run the container again while its restart policy says so (the monitor stays its parent)."""
    delay = 0.0
    while True:
        c = store.by_id(cid)
        if c is None or c.state not in ("exited", "restarting"):
            return
        counted = c.state == "restarting"  # so recorded at the run's end: the restart already counted
        policy = dict(c.host_config.get("RestartPolicy") or {})
        wait_for = restart_delay(policy, code, c.restart_count - counted, c.finished_at - c.started_at, delay,
                                 c.manually_stopped)
        if wait_for is None:
            if counted:
                store.update(cid, state="exited", monitor_pid=0)
            return
        delay = wait_for
        c = store.update(cid, state="restarting", restart_count=c.restart_count + (not counted),
                         monitor_pid=os.getpid(), monitor_start=process_start(os.getpid()))
        if not _sleep_unless_stopped(store, cid, delay):
            store.update(cid, state="exited", monitor_pid=0)
            return
        try:
            c, pending = again(store, c)
            code = supervise(store, c, runtime, Attach(), ready=pending.wait, restarts=True)
        except StrataError as e:
            code = e.exit_code
            cur = store.by_id(cid)
            if cur is not None and cur.state == "restarting":
                store.update(cid, state="exited", error=str(e), exit_code=code, finished_at=time.time(),
                             monitor_pid=0)


def _sleep_unless_stopped(store: ContainerStore, cid: str, seconds: float) -> bool:
    """Wait out the back-off, looking at the record every 100 ms; False if the user stopped it meanwhile."""
    end = time.monotonic() + seconds
    while True:
        c = store.by_id(cid)
        if c is None or c.manually_stopped:
            return False
        left = end - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.1))


def spawn_restarter(store: ContainerStore, cid: str, runtime: Runtime, again: Again, code: int) -> None:
    """An attached run ended while its restart policy says go on: the restarts continue in a detached
    monitor (as Docker's daemon restarts it after the attached CLI returned)."""
    sys.stdout.flush()
    sys.stderr.flush()
    from strata.container.tty import fork_session

    with store.released():
        pid = fork_session()
        if pid == 0:
            try:
                if os.fork() != 0:
                    os._exit(0)
                _detach_stdio()
                detached = ContainerStore(store.root)
                try:
                    _restart_loop(detached, cid, runtime, again, code)
                except BaseException as e:
                    _note(store.root, cid, e)
                finally:
                    detached.close()
            finally:
                os._exit(0)
    os.waitpid(pid, 0)


def _detach_stdio() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.chdir("/")
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def _keeper_main(store_root: Path, c: Container, runtime: Runtime, report_fd: int,
                 remove: Callable[[ContainerStore, Container], None] | None, again: Again | None,
                 client: tuple[socket.socket, socket.socket] | None = None, attach: Attach | None = None,
                 front: int = 0) -> None:
    """The monitor's parent, a subreaper too: when the monitor is killed, the container is re-parented
    here, so its real exit status is still reaped and recorded, and its output (of the first run: the
    keeper holds the pipes' read ends, so the container never gets SIGPIPE) is still logged."""
    _detach_stdio()
    set_subreaper()
    tty = bool(c.config.get("Tty"))
    pipes = None if tty else (*os.pipe(), *os.pipe())
    if client is not None:
        client[1].close()  # the caller's end
    pid = os.fork()
    if pid == 0:
        try:
            _monitor_main(store_root, c, runtime, report_fd, remove, again, pipes,
                          client[0] if client is not None else None, attach, front)
        finally:
            os._exit(0)
    os.close(report_fd)
    if client is not None:
        client[0].close()
    for fd in {fd for fd in (attach.stdin, attach.stdout, attach.stderr) if fd is not None} if attach else ():
        os.close(fd)  # the user's streams are the monitor's to hold
    if pipes is not None:
        os.close(pipes[1])
        os.close(pipes[3])
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        return
    store = ContainerStore(store_root)
    try:
        _take_over(store, c.id, runtime, (pipes[0], pipes[2]) if pipes else None, again)
    except BaseException as e:
        _note(store_root, c.id, e)
    finally:
        store.close()


def _take_over(store: ContainerStore, cid: str, runtime: Runtime, outputs: tuple[int, int] | None,
               again: Again | None) -> None:
    """Carry on for a killed monitor: pump, reap and record the running container (now our child),
    or resume a restart policy that was waiting."""
    c = store.by_id(cid)
    if c is None:
        return
    me = {"monitor_pid": os.getpid(), "monitor_start": process_start(os.getpid())}
    if c.state in ("running", "paused") and c.pid and _is_child(c.pid):
        c = store.update(cid, **me)
        run = _Run(store, c, runtime, Attach())
        run.pid = c.pid
        run.restarts = again is not None
        if outputs is not None:
            run.outputs = {outputs[0]: "stdout", outputs[1]: "stderr"}
            for fd in outputs:
                os.set_blocking(fd, False)
        health = _health(store.root, c, runtime, since=c.started_at)
        if health is not None:
            health.start(resume=True)  # probing goes on where the killed monitor left it
        try:
            code = run.pump()
        finally:
            if health is not None:
                health.stop()
        run.finish(code)
    elif c.state == "restarting":  # its restart already counted: the loop goes on from here
        c = store.update(cid, **me)
        code = c.exit_code
    else:
        return
    if again is not None:
        _restart_loop(store, cid, runtime, again, code)


def _is_child(pid: int) -> bool:
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True
