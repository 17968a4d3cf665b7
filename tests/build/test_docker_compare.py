"""The corpus under ``corpus/`` built by Docker 20.10's classic builder and by ``strata build`` from the
same context: the same files (content, modes, owners), the same config, the same history lines."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from build_helpers import Strata
from imagetree import config_view, history_view, read_image

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "Dockerfile").exists())
COMMON_FLAGS = ("--build-arg", "X=7", "--label", "corpus=yes", "--label", "b=two words")


def _prepare(case: str, dest: Path) -> Path:
    """A copy of the case's context with fixed modes (git does not keep them) and generated files."""
    ctx = dest / case
    shutil.copytree(CORPUS / case, ctx, symlinks=True)
    for path in [ctx, *ctx.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    if case == "addtar":
        with tarfile.open(ctx / "archive.tar.gz", "w:gz") as tar:
            for name, data, uid in (("pkg/bin/tool", b"#!/bin/sh\necho tool\n", 1000), ("pkg/README", b"read me\n", 0)):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o755, uid, uid, 1_600_000_000
                tar.addfile(info, io.BytesIO(data))
    if case == "multistage":
        os.symlink("README", ctx / "src" / "readme-link")
    return ctx


def _docker_build(dockerd: Any, ctx: Path, tag: str) -> subprocess.CompletedProcess[str]:
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    return subprocess.run(dockerd.argv("build", "-t", tag, *COMMON_FLAGS, str(ctx)), env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_same_image_as_docker(case: str, dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _prepare(case, tmp_path)
    tag = f"corpus-{case}:1"
    d = _docker_build(dockerd, ctx, tag)
    assert d.returncode == 0, d.stdout + d.stderr
    s = strata("build", "-t", tag, *COMMON_FLAGS, str(ctx))
    dockerd.run("save", "-o", str(tmp_path / "d.tar"), tag)
    strata("save", "-o", str(tmp_path / "s.tar"), tag)
    d_tree, d_doc = read_image(tmp_path / "d.tar")
    s_tree, s_doc = read_image(tmp_path / "s.tar")
    differ = {k: (d_tree.get(k), s_tree.get(k)) for k in sorted(set(d_tree) | set(s_tree)) if d_tree.get(k) != s_tree.get(k)}
    assert not differ, differ
    assert config_view(s_doc) == config_view(d_doc)
    assert history_view(s_doc) == history_view(d_doc)  # COPY/ADD content hashes included
    # the image strata built loads and runs in Docker
    strata_id = strata("inspect", "--format", "{{.Id}}", tag).stdout.strip()
    dockerd.run("rmi", tag)
    dockerd.run("load", "-i", str(tmp_path / "s.tar"))
    assert dockerd.run("inspect", "--format", "{{.Id}}", tag).stdout.strip() == strata_id
    ran = dockerd.run("run", "--rm", "--network", "none", "--entrypoint", "/bin/busybox", tag, "true", check=False)
    assert ran.returncode == 0, ran.stderr
    assert _structure(s.stdout) == _without_unused_stage(_structure(d.stdout))
    assert s.stdout.splitlines()[-1] == f"Successfully tagged {tag}"


def _structure(out: str) -> list[str]:
    """The builder's own lines (Step, --->, Running in, Removing, Successfully), IDs masked."""
    keep = ("Step ", " ---> ", "Removing intermediate container", "Successfully", "# Executing")
    return [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in out.splitlines() if line.startswith(keep)]


def _without_unused_stage(lines: list[str]) -> list[str]:
    """Docker's classic builder runs every stage; strata (as BuildKit) skips one the target does not
    need (the corpus calls it ``unused``): its steps removed, the others renumbered."""
    kept: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith("Step "):
            skipping = line.endswith(" AS unused") or (skipping and " : FROM " not in line)
        if not skipping:
            kept.append(line)
    total = sum(1 for line in kept if line.startswith("Step "))
    n = iter(range(1, total + 1))
    return [re.sub(r"^Step \d+/\d+ :", lambda _: f"Step {next(n)}/{total} :", line) for line in kept]


def _cache_flags(out: str) -> list[bool]:
    """Per step: did it say ``Using cache``."""
    flags: list[bool] = []
    for line in out.splitlines():
        if line.startswith("Step "):
            flags.append(False)
        elif line == " ---> Using cache" and flags:
            flags[-1] = True
    return flags


def test_cache_decisions_like_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    """Rebuild with nothing changed, then with one file changed: the same steps come from the cache."""
    ctx = _prepare("basic", tmp_path)
    runs: dict[str, list[list[bool]]] = {"docker": [], "strata": []}
    for change in (None, None, "d/sub/f"):
        if change:
            (ctx / change).write_text("changed\n")
        d = _docker_build(dockerd, ctx, "cache-test:1")
        assert d.returncode == 0, d.stderr
        runs["docker"].append(_cache_flags(d.stdout))
        runs["strata"].append(_cache_flags(strata("build", "-t", "cache-test:1", *COMMON_FLAGS, str(ctx)).stdout))
    assert runs["strata"][1:] == runs["docker"][1:]
    assert runs["strata"][2].index(False, 2) == 6  # Step 7, the COPY of the changed file, is the first rebuilt


def test_add_url_like_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    """ADD of an http URL (served on loopback): the same file (name, mode 0600, content, not
    extracted) and the same history line as Docker's."""
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / "notes.txt").write_text("from the web\n")
    with tarfile.open(served / "pkg.tar", "w") as tar:
        info = tarfile.TarInfo("inside")
        tar.addfile(info, io.BytesIO(b""))
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    base = f"http://127.0.0.1:{server.server_port}"
    (ctx / "Dockerfile").write_text(f"FROM strata-test/busybox:latest\nADD {base}/notes.txt /web/\nADD {base}/pkg.tar /web/pkg.tar\n")
    try:
        d = _docker_build(dockerd, ctx, "addurl:1")
        assert d.returncode == 0, d.stderr
        strata("build", "-t", "addurl:1", *COMMON_FLAGS, str(ctx))
    finally:
        server.shutdown()
        server.server_close()
    dockerd.run("save", "-o", str(tmp_path / "d.tar"), "addurl:1")
    strata("save", "-o", str(tmp_path / "s.tar"), "addurl:1")
    d_tree, d_doc = read_image(tmp_path / "d.tar")
    s_tree, s_doc = read_image(tmp_path / "s.tar")
    assert {k: v for k, v in s_tree.items() if k.startswith("web")} == {k: v for k, v in d_tree.items() if k.startswith("web")}
    assert history_view(s_doc) == history_view(d_doc)
