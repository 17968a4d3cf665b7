"""A RUN step's output reaches the build's output straight from the step's monitor (no attach socket,
no reading back of its log): both streams, in order per stream, a last line without a newline, a large
output whole; the runtime's record of each step container goes with its removal, so nothing of it
stays after the build, failed or not."""

from __future__ import annotations

import re
from pathlib import Path

from build_helpers import BUSYBOX, Strata, mounts_under


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _left(root: Path) -> list[str]:
    state = root / "runtime" / "runc"
    return sorted(p.name for p in state.iterdir()) if state.is_dir() else []


def test_run_output_streams_whole(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    script = "echo first; echo to-stderr >&2; seq 1 20000; printf no-newline"
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN {script}\nRUN echo second\n")
    r = strata("build", "--no-cache", str(ctx))
    out = r.stdout[r.stdout.index(" ---> Running in"):]  # what the steps printed (the Step lines name it too)
    assert "\x1b[91mto-stderr\n\x1b[0m" in out  # stderr on stdout, marked, as Docker's CLI shows it
    out = re.sub("\x1b\\[91m.*?\x1b\\[0m", "", out, flags=re.S)  # (it may land inside a line of stdout)
    assert "first\n" in out and "no-newline" in out and "second\n" in out
    numbers = [line for line in out.splitlines() if line.isdigit()]
    assert numbers == [str(i) for i in range(1, 20001)]  # all of it, in order
    assert out.index("first\n") < out.index("\n20000\n") < out.index("no-newline") < out.index("second\n")
    assert "to-stderr" in r.stdout + r.stderr
    assert _left(root) == []
    assert strata("ps", "-aq").stdout == ""
    assert mounts_under(root) == []


def test_failing_run_leaves_no_runtime_record(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN echo before\nRUN echo failing && exit 4\n")
    r = strata("build", str(ctx), check=False)
    assert r.returncode == 4
    assert "before\n" in r.stdout and "failing\n" in r.stdout
    assert _left(root) == []
    assert strata("ps", "-aq").stdout == ""


_DRIVER = """
import json, sys
from strata.cli.main import main
rc = main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump({"rc": rc, "modules": sorted(sys.modules)}, f)
"""


def test_a_run_step_keeps_no_log(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    """Its output has gone to the build: the step writes no json-file log (nor loads its options)."""
    import json
    import os
    import subprocess
    import sys

    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN echo logged-nowhere\n")
    report = tmp_path / "modules.json"
    env = {**os.environ, "STRATA_ROOT": str(root)}
    res = subprocess.run([sys.executable, "-c", _DRIVER, str(report), "build", "--no-cache", str(ctx)],
                         capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    data = json.loads(report.read_text())
    assert data["rc"] == 0, res.stderr
    assert "logged-nowhere" in res.stdout
    assert "strata.container.lifecycle" in data["modules"]  # a step container ran
    assert "strata.container.logopts" not in data["modules"]
