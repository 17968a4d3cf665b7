"""The user's ^C (SIGINT to the whole foreground process group) or a closed terminal (SIGHUP) at the moment
a command forks the helper that must outlive it: ``run -d``/``start`` fork the intermediate of a detached
monitor, ``exec -d`` a watcher. Until that child has left the terminal's session it is in the front's
process group; a signal that reaches it then (before it ran at all, on a loaded machine) killed it
half-way (SIGHUP: no monitor, the container never starts) or made the front's Python handler raise
``KeyboardInterrupt`` in it (``exec -d``'s watcher ended before it started the process; and the front,
interrupted too, removed the scratch directory its watcher still read). The window is forced: an at-fork hook in the front's process sends the signal to the whole
group from each child the command forks, before that child runs a line of strata. (The ^C cases of
``run -d`` and ``start`` passed before the fix too: CPython runs no handler in the intermediate before its
second fork. They stay as guards.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.runtime

# the front: strata's CLI whose forked children signal the front's whole process group at once. The hook
# is C code (no Python frame of its own): the handler of a Python signal runs in the first frame of the
# child's own code, right after ``os.fork()`` returns, as it does when the user's ^C reaches a child that
# had not yet run.
_FRONT = """
import functools, os, sys
os.register_at_fork(after_in_child=functools.partial(os.killpg, os.getpgid(0), int(sys.argv[1])))
sys.argv = ["strata", *sys.argv[2:]]
from strata.cli.main import run
run()
"""


def _front(strata: Strata, sig: signal.Signals, *args: str) -> subprocess.CompletedProcess[str]:
    """The command in a process group of its own (the signal must not reach this test), as a shell runs it."""
    return subprocess.run([sys.executable, "-c", _FRONT, str(int(sig)), *args], env=strata.env, capture_output=True,
                          text=True, timeout=120, start_new_session=True, check=False)


def _until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.1)


def _state(strata: Strata, name: str) -> str:
    return strata("inspect", "-f", "{{.State.Status}}", name).stdout.strip()


def _name(what: str) -> str:
    return f"forkrace-{what}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_run_d_interrupted_at_the_monitors_fork_still_starts_the_container(strata: Strata, busybox_image: str,
                                                                             sig: signal.Signals) -> None:
    name = _name("rund")
    done = _front(strata, sig, "run", "-d", "--network", "none", "--name", name, busybox_image, "sleep", "300")
    assert done.returncode in (0, 130, -sig), done  # the front itself may die of the user's signal
    _until(lambda: _state(strata, name) == "running", f"{name} running after {sig.name} ({done!r})")
    assert strata("inspect", "-f", "{{.State.Pid}}", name).stdout.strip() != "0"
    strata("rm", "-f", name)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_start_interrupted_at_the_monitors_fork_still_starts_the_container(strata: Strata, busybox_image: str,
                                                                           sig: signal.Signals) -> None:
    name = _name("start")
    strata("create", "--network", "none", "--name", name, busybox_image, "sleep", "300")
    done = _front(strata, sig, "start", name)
    assert done.returncode in (0, 130, -sig), done
    _until(lambda: _state(strata, name) == "running", f"{name} running after {sig.name} ({done!r})")
    strata("rm", "-f", name)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_exec_d_interrupted_at_the_watchers_fork_still_runs_the_process(strata: Strata, busybox_image: str,
                                                                        sig: signal.Signals) -> None:
    name = _name("exec")
    strata("run", "-d", "--network", "none", "--name", name, busybox_image, "sleep", "300")
    done = _front(strata, sig, "exec", "-d", name, "touch", "/forkrace-ran")
    assert done.returncode in (0, 130, -sig), done
    _until(lambda: strata("exec", name, "test", "-e", "/forkrace-ran", check=False).returncode == 0,
           f"the exec -d process ran after {sig.name} ({done!r})")
    strata("rm", "-f", name)

