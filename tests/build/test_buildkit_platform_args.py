"""BuildKit's automatic platform ARGs (``TARGETPLATFORM`` … ``BUILDVARIANT``): in FROM lines, in a stage
after ``ARG NAME``, from ``--platform`` (normalised as containerd does) and the host; a ``--build-arg``
overrides one, a stage's default wins over it, a meta ``ARG NAME`` without a value blanks it. Next to
Docker 20.10's BuildKit (``DOCKER_BUILDKIT=1``) the same values are printed."""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata
from test_buildah_compare import buildah as buildah_peer  # noqa: F401  (the buildah peer fixture, by this name)

_NAMES = (
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
)
_SHOW = 'RUN echo "SHOW T=$TARGETPLATFORM $TARGETOS $TARGETARCH [$TARGETVARIANT] B=$BUILDPLATFORM $BUILDOS $BUILDARCH [$BUILDVARIANT]"\n'
_HOST = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())

ALL = (
    f"ARG BASE={BUSYBOX}\nFROM --platform=$BUILDPLATFORM $BASE AS base\n"
    'RUN echo "SHOW undeclared=[$TARGETARCH][$BUILDPLATFORM]"\n'
    + "".join(f"ARG {n}\n" for n in _NAMES)
    + _SHOW
)
QUIRKS = (
    f"ARG TARGETARCH\nARG TAG=latest-$TARGETARCH\nFROM {BUSYBOX}\nARG TARGETARCH=foo\nARG TAG\nARG BUILDARCH\n"
    'RUN echo "SHOW ta=[$TARGETARCH] tag=[$TAG] ba=[$BUILDARCH]"\n'
)
CASES = [
    (ALL, (), ["undeclared=[][]", f"T=linux/{_HOST} linux {_HOST} [] B=linux/{_HOST} linux {_HOST} []"]),
    (ALL, ("--platform", "linux/arm/v7"), ["undeclared=[][]", f"T=linux/arm/v7 linux arm [v7] B=linux/{_HOST} linux {_HOST} []"]),
    (ALL, ("--platform", "linux/arm"), ["undeclared=[][]", f"T=linux/arm/v7 linux arm [v7] B=linux/{_HOST} linux {_HOST} []"]),
    (ALL, ("--platform", "Linux/ARM64/v8"), ["undeclared=[][]", f"T=linux/arm64 linux arm64 [] B=linux/{_HOST} linux {_HOST} []"]),
    (ALL, ("--platform", "linux/amd64/v2"), ["undeclared=[][]", f"T=linux/amd64/v2 linux amd64 [v2] B=linux/{_HOST} linux {_HOST} []"]),
    (QUIRKS, (), [f"ta=[foo] tag=[latest-] ba=[{_HOST}]"]),
    (QUIRKS, ("--build-arg", "TARGETARCH=zz", "--build-arg", "BUILDARCH=yy"), ["ta=[zz] tag=[latest-zz] ba=[yy]"]),
]  # fmt: skip


def _shown(output: str) -> list[str]:
    """What the RUN steps printed (``SHOW …``), from classic lines or BuildKit's ``#N 0.123 …`` lines."""
    return [re.sub(r"^.*?SHOW ", "", line) for line in output.splitlines()
            if "SHOW " in line and "echo" not in line]  # fmt: skip


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


@pytest.mark.parametrize(("dockerfile", "flags", "want"), CASES)
def test_platform_args(
    strata: Strata, busybox: str, tmp_path: Path, dockerfile: str, flags: tuple[str, ...], want: list[str]
) -> None:
    r = strata("build", "--no-cache", *flags, str(_ctx(tmp_path, dockerfile)))
    assert _shown(r.stdout) == want, r.stdout


def test_platform_args_change_the_cache(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """A RUN that declares TARGETARCH is rebuilt for another --platform (the value is in its key)."""
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n")
    strata("build", "-t", "arch:1", "--platform", "linux/arm64", str(ctx))
    again = strata("build", "-t", "arch:2", "--platform", "linux/arm/v7", str(ctx))
    assert "Step 3/3 : RUN echo $TARGETARCH > /arch\n ---> Running in" in again.stdout
    assert strata("run", "--rm", "arch:2", "cat", "/arch").stdout == "arm\n"
    assert strata("run", "--rm", "arch:1", "cat", "/arch").stdout == "arm64\n"


@pytest.mark.peers
@pytest.mark.parametrize(("dockerfile", "flags", "want"), CASES)
def test_platform_args_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path,
                                   dockerfile: str, flags: tuple[str, ...], want: list[str]) -> None:  # fmt: skip
    ctx = _ctx(tmp_path, dockerfile)
    env = dict(dockerd.env, DOCKER_BUILDKIT="1")
    argv = dockerd.argv("build", "--progress", "plain", "--network", "none", "--no-cache", *flags, str(ctx))
    theirs = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert theirs.returncode == 0, theirs.stderr
    ours = strata("build", "--no-cache", *flags, str(ctx))
    assert _shown(ours.stdout) == _shown(theirs.stdout + theirs.stderr) == want


@pytest.mark.peers
@pytest.mark.parametrize(("dockerfile", "flags", "want"), [CASES[0], CASES[6]])
def test_platform_args_as_buildah(buildah_peer: list[str], strata: Strata, busybox: str, tmp_path: Path,  # noqa: F811
                                  dockerfile: str, flags: tuple[str, ...], want: list[str]) -> None:  # fmt: skip
    """buildah bud (a second peer) where it agrees with BuildKit: buildah keeps a meta ``ARG TARGETARCH``
    without a value at the platform's value (BuildKit blanks it), and looks for an image of the
    ``--platform`` even for ``FROM --platform=$BUILDPLATFORM``: those cases are BuildKit's only."""
    ctx = _ctx(tmp_path, dockerfile)
    theirs = subprocess.run([*buildah_peer, "bud", "--isolation", "chroot", *flags, str(ctx)], capture_output=True, text=True, timeout=600)
    assert theirs.returncode == 0, theirs.stderr
    assert _shown(strata("build", *flags, str(ctx)).stdout) == _shown(theirs.stdout) == want
