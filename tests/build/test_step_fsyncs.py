"""A build's step containers are removed right after their step: their records are written without
fsync (``atomicfile.not_durable``), while what the build keeps (blobs, layers) stays durable (the
build cache's entries are hints, written without fsync: tests/build/test_build_speed.py). Seen from outside with strace, as a user's build runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from build_helpers import Strata

from strata.atomicfile import not_durable, write_bytes_atomic


def _fsynced_paths(root: Path, ctx: Path, trace: Path) -> list[str]:
    env = dict(os.environ, STRATA_ROOT=str(root))
    proc = subprocess.run(
        ["strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(trace),
         sys.executable, "-m", "strata", "build", "--no-cache", "-q", "--network", "none", "-t", "fsyncs/t:1", str(ctx)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return re.findall(r"f(?:data)?sync\(\d+<([^>]*)>", trace.read_text())


def test_step_container_records_skip_fsync_and_the_image_stays_durable(
    strata: Strata, busybox: str, root: Path, tmp_path: Path
) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("data\n")
    (ctx / "Dockerfile").write_text(f"FROM {busybox}\nCOPY f /f\nRUN echo hi > /x\nCMD [\"cat\", \"/x\"]\n")
    paths = _fsynced_paths(root, ctx, tmp_path / "trace")
    containers = str(root / "containers") + "/"
    in_containers = [p for p in paths if p.startswith(containers) and not p.endswith("/exit")]
    assert in_containers == []  # hosts, hostname, resolv.conf, lowers, config.json and their directory
    assert any(p.startswith(str(root / "blobs")) for p in paths)  # the image's blobs: still durable
    assert strata("run", "--rm", "fsyncs/t:1").stdout == "hi\n"
    assert strata("ps", "-aq").stdout == ""


def test_not_durable_skips_fsync_only_in_its_own_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(threading.current_thread().name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_bytes_atomic(tmp_path / "a", b"1")
    assert len(synced) == 2  # the file and its directory
    synced.clear()
    other = threading.Thread(target=write_bytes_atomic, args=(tmp_path / "b", b"2"), name="other")
    with not_durable():
        write_bytes_atomic(tmp_path / "a", b"3")
        other.start()
        other.join()
    assert synced == ["other", "other"]  # another thread's writes stay durable
    assert (tmp_path / "a").read_bytes() == b"3" and (tmp_path / "b").read_bytes() == b"2"
    synced.clear()
    write_bytes_atomic(tmp_path / "a", b"4")  # durable again after the block
    assert len(synced) == 2
