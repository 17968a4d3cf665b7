"""``save -o FILE`` makes the archive durable before it is visible under its name: the temp file's data is
fsynced before the rename, and the directory after it (a crash right after the rename could otherwise
leave an empty or partial archive named as the finished one). Seen with strace, the real system calls."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]


def test_save_fsyncs_before_the_rename(strata: Strata, root: Path, rootfs_tar: Path, tmp_path: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    strata("import", str(rootfs_tar), "review-durable:1")
    out = tmp_path / "out.tar"
    trace = tmp_path / "trace.txt"
    env = dict(os.environ, STRATA_ROOT=str(root))
    subprocess.run(["strace", "-f", "-y", "-qq", "-o", str(trace), "-e", "trace=fsync,fdatasync,rename,renameat,renameat2",
                    sys.executable, "-m", "strata", "save", "-o", str(out), "review-durable:1"],
                   env=env, check=True, capture_output=True, timeout=300)  # fmt: skip
    assert out.stat().st_size > 0
    lines = trace.read_text().splitlines()
    renamed = [i for i, line in enumerate(lines) if "rename" in line and str(out) in line]
    assert renamed, lines
    synced = [i for i, line in enumerate(lines)  # the temp file: Docker CLI's .docker_temp_N beside out.tar
              if re.search(r"\bf(data)?sync\(\d+<[^>]*(out\.tar|\.docker_temp_\d+)[^>]*>", line)]
    assert synced and synced[0] < renamed[-1], lines  # the data before the name
    dir_synced = [i for i, line in enumerate(lines) if re.search(rf"\bfsync\(\d+<{re.escape(str(tmp_path))}>\)", line)]
    assert dir_synced and dir_synced[-1] > renamed[-1], lines  # the name itself
