"""A step's layer tar is durable before it is renamed into blobs/ and recorded: fsynced itself, or (when
the step's upper dir is adopted as the layer's unpacked directory) covered by the adoption's syncfs of
the store's filesystem, made after the tar was written. Seen from outside with strace, as a user's
build runs: for every layer blob of the image, an fsync of its temp file or a syncfs lies between the
temp file's creation and its rename into place."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from build_helpers import Strata


def test_every_layer_tar_is_durable_before_its_rename(strata: Strata, busybox: str, root: Path, tmp_path: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("data\n")
    (ctx / "Dockerfile").write_text(f"FROM {busybox}\nRUN mkdir /d && echo a > /d/a\nCOPY f /d/\nRUN rm /d/a\n")
    trace = tmp_path / "trace"
    env = dict(os.environ, STRATA_ROOT=str(root))
    done = subprocess.run(
        ["strace", "-f", "-y", "-qq", "-e", "trace=openat,fsync,syncfs,rename,renameat,renameat2", "-o", str(trace),
         sys.executable, "-m", "strata", "build", "--no-cache", "-q", "--network", "none", "-t", "tarsync/t:1", str(ctx)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = trace.read_text().splitlines()
    layers = json.loads(strata("inspect", "-f", "{{json .RootFS.Layers}}", "tarsync/t:1").stdout)[1:]
    assert len(layers) == 3
    adopted = 0
    for diff_id in layers:
        final = str(root / "blobs" / "sha256" / diff_id.split(":")[1])
        renamed = next(i for i, line in enumerate(lines) if re.search(r"rename\w*\(.*\"" + re.escape(final) + '"', line))
        tmp = re.search(r'"([^"]*/blob-[^"]*)"', lines[renamed])
        assert tmp is not None, lines[renamed]
        made = next(i for i, line in enumerate(lines[:renamed]) if "openat(" in line and f'"{tmp.group(1)}"' in line)
        between = lines[made:renamed]
        fsynced = any(f"fsync({fd}" in line for line in between for fd in re.findall(r"= (\d+)<", lines[made]))
        synced = any("syncfs(" in line for line in between)
        assert fsynced or synced, (diff_id, between)
        adopted += (root / "layers" / diff_id.split(":")[1]).is_dir() and not fsynced
    assert adopted >= 1  # the adoption's syncfs did the work at least once (the last RUN's layer)
    assert strata("run", "--rm", "tarsync/t:1", "ls", "/d").stdout == "f\n"
