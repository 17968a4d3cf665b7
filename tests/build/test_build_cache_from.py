"""``build --cache-from`` next to Docker 20.10's classic builder: an image whose history begins as the
build's does gives ``Using cache`` for those steps even with no parent chain (saved, removed, loaded: as
pulled), the last matching step being that very image; a step that differs, and every one after it, runs;
with ``--cache-from`` given, the build's own cache counts only for ancestors of a source (a source that
does not exist leaves no cache at all); ``--no-cache`` wins."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

STEPS = ("COPY a.txt /a.txt\nRUN echo built > /b.txt\nLABEL x=y\n")


def _context(tmp_path: Path, name: str, token: str, steps: str = STEPS) -> Path:
    ctx = tmp_path / name
    ctx.mkdir()
    (ctx / "a.txt").write_text("hello\n")
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nENV BF_TOKEN={token}\n{steps}")
    return ctx


class _Side:
    """``build``/``save``/``rmi``/``load``/``inspect`` on one side (Docker's classic builder or strata)."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def build(self, ctx: Path, *flags: str) -> subprocess.CompletedProcess[str]:
        res: subprocess.CompletedProcess[str] = self.run("build", *flags, str(ctx))
        assert res.returncode == 0, res.stdout + res.stderr
        return res

    def image_id(self, ref: str) -> str:
        return str(self.run("inspect", "--format", "{{.Id}}", ref).stdout.strip())

    def as_pulled(self, ref: str, tar: Path) -> str:
        """``ref`` saved, removed (its parents with it) and loaded: no parent chain, no build cache."""
        self.run("save", "-o", str(tar), ref)
        self.run("rmi", ref)
        self.run("load", "-i", str(tar))
        return self.image_id(ref)


@pytest.fixture
def sides(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str) -> Iterator[list[_Side]]:
    """Docker's side and strata's; the images a test tagged in the shared dockerd removed after it."""

    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(dockerd.argv(*args), env=dict(dockerd.env, DOCKER_BUILDKIT="0"), capture_output=True,
                              text=True, timeout=600)  # fmt: skip

    yield [_Side(docker), _Side(lambda *a: strata(*a, check=False))]
    tagged = docker("images", "-q", "--filter", "reference=bf-cache-from-*").stdout.split()
    if tagged:
        docker("rmi", "-f", *set(tagged))


def _structure(out: str) -> list[str]:
    keep = ("Step ", " ---> ", "Removing intermediate container", "Successfully")
    return [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in out.splitlines() if line.startswith(keep)]


def test_a_loaded_image_is_the_cache(sides: list[_Side], tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    ctx = _context(tmp_path, "same", token)
    seen = []
    for i, side in enumerate(sides):
        ref = f"bf-cache-from-{token[:8]}:{i}"
        side.build(ctx, "-t", ref)
        source = side.as_pulled(ref, tmp_path / f"src{i}.tar")
        plain = side.build(ctx)  # nothing left to reuse without --cache-from
        assert " ---> Using cache" not in plain.stdout, plain.stdout
        again = side.build(ctx, "--cache-from", ref)
        assert again.stdout.count(" ---> Using cache") == 4, again.stdout
        assert again.stdout.splitlines()[-1] == f"Successfully built {source.removeprefix('sha256:')[:12]}"
        seen.append(_structure(again.stdout))
    assert seen[0] == seen[1]


def test_the_steps_after_a_difference_run(sides: list[_Side], tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    ctx = _context(tmp_path, "source", token)
    other = _context(tmp_path, "other", token, STEPS.replace("echo built", "echo other"))
    seen = []
    for i, side in enumerate(sides):
        ref = f"bf-cache-from-{token[:8]}:{i}"
        side.build(ctx, "-t", ref)
        side.as_pulled(ref, tmp_path / f"src{i}.tar")
        res = side.build(other, "--cache-from", f"nosuch-{token[:8]}:1,{ref}")
        assert res.stdout.count(" ---> Using cache") == 2, res.stdout  # ENV, COPY; not RUN nor LABEL after it
        seen.append(_structure(res.stdout))
        assert side.build(ctx, "--no-cache", "--cache-from", ref).stdout.count("Using cache") == 0
    assert seen[0] == seen[1]


def test_a_source_that_is_not_there_leaves_no_cache(sides: list[_Side], tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    ctx = _context(tmp_path, "own", token)
    for i, side in enumerate(sides):
        ref = f"bf-cache-from-{token[:8]}:{i}"
        side.build(ctx, "-t", ref)
        assert side.build(ctx).stdout.count(" ---> Using cache") == 4
        assert side.build(ctx, "--cache-from", f"nosuch-{token[:8]}:1").stdout.count("Using cache") == 0
        # its own steps are ancestors of the tagged image: their cache counts again
        res = side.build(ctx, "--cache-from", ref)
        assert res.stdout.count(" ---> Using cache") == 4, res.stdout


def test_a_multi_stage_build_as_docker(sides: list[_Side], tmp_path: Path) -> None:
    """Only the final stage's image is a source: the first stage's steps match where its history does
    (its ENV), its RUN runs; the last stage is all cache (its COPY --from's content hash matches)."""
    token = uuid.uuid4().hex
    ctx = tmp_path / "multi"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX} AS a\nENV T={token}\nRUN echo one > /one\n"
                                    f"FROM {BUSYBOX}\nENV T={token}\nCOPY --from=a /one /one\nRUN cat /one\n")
    seen = []
    for i, side in enumerate(sides):
        ref = f"bf-cache-from-{token[:8]}:{i}"
        side.build(ctx, "-t", ref)
        source = side.as_pulled(ref, tmp_path / f"multi{i}.tar")
        res = side.build(ctx, "--cache-from", ref)
        assert res.stdout.count(" ---> Using cache") == 4, res.stdout
        assert res.stdout.splitlines()[-1] == f"Successfully built {source.removeprefix('sha256:')[:12]}"
        seen.append(_structure(res.stdout))
    assert seen[0] == seen[1]
