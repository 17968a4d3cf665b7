"""``runc start`` is done once the container's init has written its go-ahead to ``exec.fifo``, a moment
before that init (runc's own Go code) execs the container's process. A signal sent in between -- the
user's ^C that an attached ``run`` forwards as the container starts, a ``kill`` right after ``start``
returned -- reached runc's init, which died of it (Go: exit 2), so the container ended without running.
``start`` now returns once the process runs. The window is forced: strace holds the init for a few seconds
right after its write to the fifo (``inject=write:delay_exit``), and the signal is sent as ``start`` returns."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.runtime

_HOLD = 4.0  # seconds the init is held after its go-ahead (the monitor waits up to 30)


def test_a_signal_sent_as_start_returns_reaches_the_process_not_runcs_init(strata: Strata,
                                                                           busybox_image: str) -> None:
    if not shutil.which("strace"):
        if os.environ.get("CI") == "true":
            pytest.fail("strace is not installed (make deps installs it)")
        pytest.skip("strace is not installed")
    name = f"forkrace-window-{os.getpid()}"
    cid = strata("create", "--network", "none", "--name", name, busybox_image, "sleep", "300").stdout.strip()
    fifo = strata.root / "runtime" / "runc" / cid / "exec.fifo"
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=write", "-P", str(fifo),
                               "-e", f"inject=write:delay_exit={int(_HOLD * 1e6)}", *strata.argv("start", name)],
                              env=strata.env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert tracer.stdout is not None
        assert tracer.stdout.readline().strip() == name.encode()  # start returned (its monitor lives on)
        strata("kill", "-s", "HUP", name)  # the process, pid 1 without a handler, ignores it
        time.sleep(_HOLD + 1)
        state = strata("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.split()
        assert state == ["running", "0"], state
    finally:
        strata("rm", "-f", name, check=False)  # its monitor, the last tracee, ends: so does strace
        try:
            tracer.wait(30)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait()
        if tracer.stdout is not None:
            tracer.stdout.close()
