"""``http.workers``: a SIGTERM that reaches the supervisor while it forks a worker must stop that worker
too. The supervisor blocks its stop signals across each fork (no handler of its own may run in the
child), so the handler runs as the fork returns -- before the new worker was recorded: it signalled the
others only, the start loop went on, and the supervisor then waited for ever on the worker nobody had
told to stop. The window is forced: the supervisor SIGTERMs itself as it forks each worker (an at-fork
hook, C code, run once its stop signals are blocked), as a ``kill`` at that moment would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from server.helpers import free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")

_SUPERVISOR = """
import functools, os, signal, sys
os.register_at_fork(before=functools.partial(os.kill, os.getpid(), signal.SIGTERM))
sys.argv = ["strata", "registry", "serve", "--config", sys.argv[1]]
from strata.cli.main import run
run()
"""


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_a_sigterm_during_a_workers_fork_stops_every_worker_and_the_supervisor(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({"storage": {"filesystem": {"rootdirectory": str(tmp_path / "root")}},
                                   "http": {"addr": f"127.0.0.1:{free_port()}", "workers": 3}}))
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": SRC})
    seen: set[int] = set()
    deadline = time.monotonic() + 60  # seconds: it stops in well under one on an idle machine
    try:
        while proc.poll() is None:
            seen.update(_children(proc.pid))
            assert time.monotonic() < deadline, f"the supervisor did not stop: {log.read_text()}"
            time.sleep(0.05)
        assert proc.returncode == 0, log.read_text()
        assert not [pid for pid in seen if _alive(pid)], "a worker outlived its supervisor"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in seen:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
