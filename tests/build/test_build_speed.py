"""What keeps ``strata build`` fast stays so, without changing what it does: a fully cached rebuild
loads none of the machinery a step that runs needs (containers, tar, temporary files, dataclasses), a
cold multi-stage build, whose step containers are removed while the next steps go on, still leaves no
container, directory or mount behind, and the build cache's entries (hints: a lost one is a rebuilt
step) are written without fsync while the image's blobs stay durable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from build_helpers import Strata, mounts_under

MULTISTAGE = """FROM strata-test/busybox:latest AS build
RUN mkdir -p /out && for i in 1 2 3 4 5; do echo "file $i" > /out/f$i; done
WORKDIR /src
COPY src/ ./
RUN cat /src/*.txt | wc -l > /out/lines

FROM strata-test/busybox:latest AS tools
RUN echo tools > /tools

FROM strata-test/busybox:latest
ENV APP=/app
COPY --from=build /out $APP/
COPY --from=tools /tools /tools
LABEL speed=1
CMD ["cat", "/app/lines", "/tools"]
"""

# loaded only by a step that runs: a rebuild whose every step is cached needs none of them
NOT_FOR_A_CACHED_REBUILD = frozenset({
    "dataclasses", "inspect", "subprocess", "tempfile", "shutil", "tarfile",
    "strata.container.lifecycle", "strata.build.mounts", "strata.build.copy", "strata.archive.apply",
})  # fmt: skip


def _ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(MULTISTAGE)
    for i in range(3):
        (ctx / "src" / f"{i}.txt").write_text(f"line {i}\n" * 2)
    return ctx


def _imported(root: Path, *args: str) -> tuple[str, set[str]]:
    """``strata ARGS``'s stdout and the modules it imported (``-X importtime``)."""
    env = dict(os.environ, STRATA_ROOT=str(root))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "strata", *args],
                          capture_output=True, text=True, env=env, timeout=600, check=True)  # fmt: skip
    names = {m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", proc.stderr, re.M)}
    return proc.stdout, names


def test_cold_multistage_build_leaves_no_step_container(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    ctx = _ctx(tmp_path)
    out = strata("build", "--no-cache", "-t", "speed:1", str(ctx)).stdout
    removed = re.findall(r"^Removing intermediate container ([0-9a-f]{12})$", out, re.M)
    assert len(removed) == 7, out  # 3 RUN and 1 WORKDIR containers; ENV, LABEL and CMD name one (no container)
    assert strata("ps", "-aq").stdout == ""
    assert [p.name for p in (root / "containers").iterdir()] == []
    assert mounts_under(root) == []
    assert strata("run", "--rm", "speed:1").stdout == "6\ntools\n"


def test_cached_rebuild_loads_no_step_machinery(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    ctx = _ctx(tmp_path)
    first = strata("build", "-q", "-t", "speed:1", str(ctx)).stdout
    again, modules = _imported(root, "build", "-q", "-t", "speed:1", str(ctx))
    assert again == first
    assert "strata.build.builder" in modules  # the measurement sees the build's own modules
    assert sorted(modules & NOT_FOR_A_CACHED_REBUILD) == []
    shown = strata("build", "-t", "speed:1", str(ctx)).stdout
    assert shown.count(" ---> Using cache") == 10, shown


def test_build_cache_entries_skip_fsync_and_blobs_do_not(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    ctx, trace = _ctx(tmp_path), tmp_path / "trace"
    env = dict(os.environ, STRATA_ROOT=str(root))
    subprocess.run(["strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(trace), sys.executable,
                    "-m", "strata", "build", "--no-cache", "-q", "-t", "speed:1", str(ctx)],
                   capture_output=True, text=True, env=env, timeout=600, check=True)  # fmt: skip
    paths = re.findall(r"f(?:data)?sync\(\d+<([^>]*)>", trace.read_text())
    assert [p for p in paths if p.startswith(str(root / "buildcache"))] == []
    assert any(p.startswith(str(root / "blobs")) for p in paths)
    assert len(list((root / "buildcache").iterdir())) >= 10  # the entries are there all the same
    assert strata("build", "-t", "speed:1", str(ctx)).stdout.count(" ---> Using cache") == 10
