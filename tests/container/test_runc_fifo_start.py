"""``Runtime.start`` with runc starts a created container as ``runc start`` does (reading its
``exec.fifo``), without a runc process: a container runs and exits as before, and one that is not
created (stopped, or started already) still gets runc's own error from ``runc start``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from container_helpers import Strata

from strata.container.runtime import Runtime
from strata.errors import RuntimeFailure


def test_run_starts_without_a_runc_start_process(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    trace = tmp_path / "trace"
    done = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace),
         sys.executable, "-m", "strata", "run", "--rm", "--network", "none", busybox_image, "sh", "-c", "echo ran; exit 3"],
        env=strata.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (3, "ran\n"), done.stderr
    runc = [line for line in trace.read_text().splitlines() if re.search(r'execve\("[^"]*runc"', line)]
    assert any('"create"' in line for line in runc)
    assert not any('"start"' in line for line in runc)
    assert strata("ps", "-aq").stdout == ""


def test_a_stopped_container_gets_runcs_error(strata: Strata, busybox_image: str) -> None:
    cid = strata("create", "--network", "none", busybox_image, "true").stdout.strip()
    strata("start", "-a", cid)
    runtime = Runtime("runc", strata.root / "runtime" / "runc")
    state = runtime.state_root / cid
    bundle = strata.root / "containers" / cid
    assert (bundle / "config.json").is_file()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(bundle / "merged")], check=True)  # a rootfs for create
    try:
        os.makedirs(bundle / "merged" / "bin", exist_ok=True)
        shutil.copy("/bin/busybox", bundle / "merged" / "bin" / "true")
        subprocess.run(["runc", "--root", str(runtime.state_root), "create", "--bundle", str(bundle), cid],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        assert (state / "exec.fifo").exists()
        runtime.start(cid)  # created: started through its fifo
        assert not (state / "exec.fifo").exists()
        deadline = time.monotonic() + 60  # its process ends at once, run when a loaded machine gets to it
        while (runtime.state(cid) or {}).get("status") != "stopped" and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(RuntimeFailure, match="cannot start a container that has stopped"):
            runtime.start(cid)
    finally:
        runtime.delete(cid, force=True)
        subprocess.run(["umount", str(bundle / "merged")], check=False)
