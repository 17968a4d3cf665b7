"""``--platform`` decides the built image's ``os``/``architecture``/``variant`` as BuildKit does: with
``--platform`` given they are the target's whatever the stages ran on (``FROM --platform=$BUILDPLATFORM``)
or the base image was; without it the base image's are kept (``variant`` too), and a ``scratch`` image is
the host's. Next to Docker 20.10's BuildKit (``DOCKER_BUILDKIT=1``): the same ``inspect`` answer."""

from __future__ import annotations

import platform
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

_HOST = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
_FORMAT = "{{.Architecture}} {{.Os}} {{.Variant}}"
CROSS = (
    f"FROM --platform=$BUILDPLATFORM {BUSYBOX} AS b\nRUN echo built > /x\n"
    "FROM scratch\nCOPY --from=b /x /x\n"
)
ON_BUILD = f"FROM --platform=$BUILDPLATFORM {BUSYBOX}\nRUN echo built > /x\n"
SCRATCH = "FROM scratch\nCOPY f /f\n"
CASES = [
    (CROSS, ("--platform", "linux/arm64"), "arm64 linux "),
    (CROSS, ("--platform", "linux/arm/v7"), "arm linux v7"),
    (CROSS, ("--platform", "linux/arm"), "arm linux v7"),
    (ON_BUILD, ("--platform", "linux/arm/v6"), "arm linux v6"),
    (ON_BUILD, ("--platform", "linux/amd64/v2"), "amd64 linux v2"),
    (ON_BUILD, (), f"{_HOST} linux "),
    (SCRATCH, (), f"{_HOST} linux "),
    (SCRATCH, ("--platform", "linux/s390x"), "s390x linux "),
]  # fmt: skip


def _ctx(tmp_path: Path, dockerfile: str, name: str = "ctx") -> Path:
    ctx = tmp_path / name
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "f").write_text("f\n")
    return ctx


def _ours(strata: Strata, ctx: Path, flags: tuple[str, ...], tag: str) -> str:
    strata("build", "-q", "-t", tag, *flags, str(ctx))
    return strata("inspect", "--format", _FORMAT, tag).stdout.rstrip("\n")


def _theirs(dockerd: Any, ctx: Path, flags: tuple[str, ...], tag: str) -> str:
    env = dict(dockerd.env, DOCKER_BUILDKIT="1")
    argv = dockerd.argv("build", "--progress", "plain", "--network", "none", "-t", tag, *flags, str(ctx))
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = subprocess.run(dockerd.argv("inspect", "--format", _FORMAT, tag), env=dockerd.env, capture_output=True,
                         text=True, timeout=60, check=True).stdout  # fmt: skip
    return out.rstrip("\n")


@pytest.mark.parametrize(("dockerfile", "flags", "want"), CASES)
def test_image_platform(strata: Strata, busybox: str, tmp_path: Path, dockerfile: str, flags: tuple[str, ...],
                        want: str) -> None:  # fmt: skip
    assert _ours(strata, _ctx(tmp_path, dockerfile), flags, "plat:1") == want


def test_a_cached_build_for_another_platform(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """The same steps, all cached, for another ``--platform``: the image is that platform's."""
    ctx = _ctx(tmp_path, ON_BUILD)
    assert _ours(strata, ctx, (), "plat:host") == f"{_HOST} linux "
    assert _ours(strata, ctx, ("--platform", "linux/arm64"), "plat:arm64") == "arm64 linux "
    assert _ours(strata, ctx, (), "plat:host2") == f"{_HOST} linux "
    ids = {strata("inspect", "--format", "{{.Id}}", t).stdout for t in ("plat:host", "plat:arm64", "plat:host2")}
    assert len(ids) == 2


def test_a_base_of_another_platform_is_kept(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """Without ``--platform`` the image is its base's platform, variant included."""
    base = _ctx(tmp_path, SCRATCH, "base")
    assert _ours(strata, base, ("--platform", "linux/arm/v6"), "plat-base:v6") == "arm linux v6"
    child = _ctx(tmp_path, "FROM plat-base:v6\nCOPY f /g\nENV A=1\n", "child")
    assert _ours(strata, child, (), "plat-child:1") == "arm linux v6"
    assert _ours(strata, child, ("--platform", "linux/arm64"), "plat-child:2") == "arm64 linux "


@pytest.mark.peers
@pytest.mark.parametrize(("dockerfile", "flags", "want"), CASES)
def test_image_platform_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path,
                                    dockerfile: str, flags: tuple[str, ...], want: str) -> None:  # fmt: skip
    ctx = _ctx(tmp_path, dockerfile)
    tag = f"strata-plat-{uuid.uuid4().hex[:8]}:1"
    try:
        theirs = _theirs(dockerd, ctx, flags, tag)
        assert _ours(strata, ctx, flags, "plat:1") == theirs == want
    finally:
        subprocess.run(dockerd.argv("rmi", "-f", tag), env=dockerd.env, capture_output=True, timeout=60)


@pytest.mark.peers
def test_a_base_of_another_platform_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str,
                                                tmp_path: Path) -> None:  # fmt: skip
    """BuildKit uses a local base only when it is of the platform asked for (else it looks in the
    registry): ``FROM --platform=`` names the base's, the image keeps it unless ``--platform`` says."""
    name = f"strata-plat-{uuid.uuid4().hex[:8]}"
    base = _ctx(tmp_path, SCRATCH, "base")
    child = _ctx(tmp_path, f"FROM --platform=linux/arm/v6 {name}:v6\nCOPY f /g\nENV A=1\n", "child")
    try:
        _ours(strata, base, ("--platform", "linux/arm/v6"), f"{name}:v6")
        _theirs(dockerd, base, ("--platform", "linux/arm/v6"), f"{name}:v6")
        for flags in ((), ("--platform", "linux/arm64")):
            theirs = _theirs(dockerd, child, flags, f"{name}:child")
            assert _ours(strata, child, flags, f"{name}:child") == theirs
            assert theirs == ("arm64 linux " if flags else "arm linux v6")
    finally:
        subprocess.run(dockerd.argv("rmi", "-f", f"{name}:v6", f"{name}:child"), env=dockerd.env, capture_output=True,
                       timeout=60)  # fmt: skip
