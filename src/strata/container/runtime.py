"""A thin wrapper around an OCI runtime binary (runc, crun).

Each strata store keeps its runtime state under ``<root>/runtime/<name>`` (``--root`` of runc), so
stores never see each other's containers. Runtime errors become ``RuntimeFailure`` with Docker's
exit codes: 127 for a command not found, 126 for one that cannot be executed, 125 otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from strata.errors import RuntimeFailure, os_error_text

TYPE_CHECKING = False  # not typing's: a build step's container loads no typing
if TYPE_CHECKING:
    from typing import IO, Any

__all__ = ["RUNTIMES", "Runtime", "config_value", "exit_code_for", "find_runtime", "log_message"]

RUNTIMES = ("runc", "crun")


def config_value(key: str) -> Any:
    """A key of strata's config file (``$STRATA_CONFIG``, else ``/etc/strata/config.json``; Docker's
    ``daemon.json`` keys: ``default-runtime``, ``runtimes``, ``storage-driver``); None when unset."""
    path = Path(os.environ.get("STRATA_CONFIG") or "/etc/strata/config.json")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get(key) if isinstance(data, dict) else None


def _runtime_path(name: str) -> str | None:
    """The binary of runtime ``name``: a ``runtimes: {name: {path}}`` entry of the config, else PATH."""
    runtimes = config_value("runtimes")
    if isinstance(runtimes, dict) and isinstance(runtimes.get(name), dict):
        path = runtimes[name].get("path")
        if isinstance(path, str):
            return shutil.which(path)
    return shutil.which(name)


def find_runtime(name: str | None) -> str:
    """The runtime to use: the given name, else $STRATA_RUNTIME, else the config file's
    ``default-runtime``, else runc, else crun."""
    default = config_value("default-runtime")
    wanted = name or os.environ.get("STRATA_RUNTIME") or (default if isinstance(default, str) else None)
    candidates = [wanted] if wanted else list(RUNTIMES)
    for cand in candidates:
        if cand and _runtime_path(cand):
            return cand
    raise RuntimeFailure(
        f'failed to create container: OCI runtime "{candidates[0]}": executable file not found in $PATH'
        if wanted
        else "no OCI runtime found: install runc or crun",
        exit_code=125,
    )


def exit_code_for(message: str) -> int:
    """Docker's mapping of a failed start: 127 command not found, 126 not executable, else 125."""
    low = message.lower()
    if "executable file not found" in low or ("no such file or directory" in low and "exec" in low):
        return 127
    if "permission denied" in low and "exec" in low:
        return 126
    return 125


def log_message(log_file: Path, fallback: str) -> str:
    """The last error message a runtime wrote to its JSON log (``--log-format json``)."""
    msg = ""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            msg = str(entry.get("msg", ""))
    return msg or fallback.strip() or "unknown runtime error"


class Runtime:
    """One OCI runtime binary bound to a state directory."""

    def __init__(self, name: str, state_root: Path) -> None:
        self.name = name
        self.binary = _runtime_path(name) or name
        self.state_root = state_root
        state_root.mkdir(parents=True, exist_ok=True)

    def _argv(self, *args: str, log: Path | None = None) -> list[str]:
        argv = [self.binary, "--root", str(self.state_root)]
        if log is not None:
            argv += ["--log", str(log), "--log-format", "json"]
        return [*argv, *args]

    def _run(self, *args: str, what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(self._argv(*args), capture_output=True, text=True, check=False)
        except OSError as e:
            raise RuntimeFailure(f"OCI runtime {what} failed: {self.binary}: {os_error_text(e)}") from None
        if check and proc.returncode != 0:
            raise RuntimeFailure(f"OCI runtime {what} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def create(
        self,
        cid: str,
        bundle: Path,
        *,
        pid_file: Path,
        log_file: Path,
        console_socket: Path | None = None,
        stdin: int | IO[Any] | None = None,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> subprocess.Popen[bytes]:
        """Start ``runtime create``; the caller waits for it (it may need to accept the console)."""
        args = ["create", "--bundle", str(bundle), "--pid-file", str(pid_file)]
        if console_socket is not None:
            args += ["--console-socket", str(console_socket)]
        try:
            return subprocess.Popen(
                self._argv(*args, cid, log=log_file),
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.DEVNULL,
                stderr=stderr if stderr is not None else subprocess.DEVNULL,
                pass_fds=pass_fds,
            )
        except OSError as e:
            raise RuntimeFailure(f"OCI runtime create failed: {self.binary}: {os_error_text(e)}") from None

    def create_failed(self, log_file: Path, stderr_text: str = "") -> RuntimeFailure:
        msg = log_message(log_file, stderr_text)
        return RuntimeFailure(
            f"failed to create task for container: OCI runtime create failed: {msg}: unknown",
            exit_code=exit_code_for(msg),
        )

    def start(self, cid: str) -> None:
        if self.name == "runc" and _open_exec_fifo(self.state_root / cid):
            return  # what ``runc start`` does, without a runc process on every container's start
        self._run("start", cid, what="start")

    def state(self, cid: str) -> dict[str, Any] | None:
        proc = self._run("state", cid, what="state", check=False)
        if proc.returncode != 0:
            return None
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def kill(self, cid: str, signal: str = "KILL", *, all_processes: bool = False) -> bool:
        args = ["kill", *(["--all"] if all_processes else []), cid, signal]
        if self._run(*args, what="kill", check=False).returncode == 0:
            return True
        # --all walks the container's cgroup: a rootless container without delegated cgroups has none,
        # so signal its init (the pid namespace ends with it: SIGKILL to init kills every process)
        return all_processes and self._run("kill", cid, signal, what="kill", check=False).returncode == 0

    def delete(self, cid: str, *, force: bool = False) -> None:
        if not (self.state_root / cid).exists():  # runc and crun keep a container's state in <root>/<id>
            return
        self._run("delete", *(["--force"] if force else []), cid, what="delete", check=False)

    def pause(self, cid: str) -> None:
        self._run("pause", cid, what="pause")

    def resume(self, cid: str) -> None:
        self._run("resume", cid, what="resume")

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        """``runtime update -r -``: new cgroup limits (an OCI LinuxResources) for a running container."""
        try:
            # as containerd runs it: its log elsewhere, so the output is the runtime's own error line
            proc = subprocess.run(self._argv("update", "-r", "-", cid, log=Path(os.devnull)),
                                  input=json.dumps(resources), capture_output=True, text=True, check=False)
        except OSError as e:
            raise RuntimeFailure(f"OCI runtime update failed: {self.binary}: {os_error_text(e)}") from None
        if proc.returncode != 0:  # go-runc's words, the output as it is (its newline too)
            why = proc.stdout + proc.stderr
            raise RuntimeFailure(f"{self.name} did not terminate successfully: exit status {proc.returncode}: {why}")


def _open_exec_fifo(state: Path) -> bool:
    """``runc start`` of a created container, as runc does it: its init waits to open ``exec.fifo``
    for writing; opened here for reading, it writes one byte and execs the process; the fifo is then
    removed. False (nothing done: ``runc start`` decides and words the error) unless the container is
    created (the fifo there, its init alive: not a zombie, not a reused pid) and its byte was read."""
    fifo = state / "exec.fifo"
    pid = _created_init(state)
    if pid is None or not fifo.exists():
        return False
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        import select

        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                if os.read(fd, 1) != b"0":  # the init died before it wrote (or it was started already)
                    return False
                break
            if _created_init(state, pid) is None:  # gone meanwhile: runc start tells what happened
                return False
    except OSError:
        return False
    finally:
        os.close(fd)
    fifo.unlink(missing_ok=True)
    return True


def _created_init(state: Path, pid: int | None = None) -> int | None:
    """The pid of the container's init process (from runc's ``state.json``) if it runs, else None."""
    try:
        data = json.loads((state / "state.json").read_bytes())
        want, start = int(data["init_process_pid"]), int(data["init_process_start"])
        with open(f"/proc/{want}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    if fields[0] == b"Z" or int(fields[19]) != start or (pid is not None and pid != want):
        return None  # a zombie, or another process with its number since
    return want
