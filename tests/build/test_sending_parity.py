"""``Sending build context to Docker daemon  X`` next to Docker 20.10's CLI for the same contexts: the
size of the tar it sends (``.dockerignore``, names too long for USTAR, hard links, long link
targets, a Dockerfile from stdin added to it), the line ending in Docker's two carriage returns."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

pytestmark = pytest.mark.peers


def _context(base: Path, kind: str) -> Path:
    ctx = base / kind
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\n")
    (ctx / "small").write_text("x" * 700)
    if kind in ("ignored", "stdin"):
        (ctx / ".dockerignore").write_text("skipped\nDockerfile\n*.log\n")
        (ctx / "skipped").write_bytes(os.urandom(5000))
        (ctx / "a.log").write_text("log\n")
    if kind == "names":
        deep = ctx / ("d" * 90) / ("e" * 90)
        deep.mkdir(parents=True)
        (deep / "f").write_text("deep\n")
        (ctx / ("n" * 130)).write_text("long\n")
        os.symlink("/" + "t" * 140, ctx / "longlink")
        os.link(ctx / "small", ctx / "hardlink")
    return ctx


def _sending(out: bytes) -> bytes:
    return next(line for line in out.split(b"\n") if line.startswith(b"Sending build context"))


@pytest.mark.parametrize("kind", ["plain", "ignored", "names", "stdin"])
def test_sending_line_as_docker(kind: str, dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, kind)
    args = ["build", *(["-f", "-"] if kind == "stdin" else []), str(ctx)]
    stdin = f"FROM {BUSYBOX}\nRUN true\n".encode()
    theirs = subprocess.run(dockerd.argv(*args), env=dict(dockerd.env, DOCKER_BUILDKIT="0"), input=stdin,
                            capture_output=True, timeout=300, check=True)  # fmt: skip
    ours = strata(*args, input=stdin)
    assert _sending(bytes(ours.stdout)) == _sending(theirs.stdout)  # type: ignore[arg-type]
    assert _sending(theirs.stdout).endswith(b"\r\r")
