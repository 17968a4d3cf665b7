"""Helpers for the registry-client tests: images from files, the fault registry, a strata runner."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagegen import generate, layer_tar
from server.helpers import ServerThread
from strata.digest import digest_bytes
from strata.image.api import SimpleImage

from .faultserver import FaultRegistry

STRATA = [sys.executable, "-m", "strata"]


def make_image(directory: Path, layers: list[dict[str, bytes]], *, gz: bool = True, cmd: str = "/bin/sh") -> SimpleImage:
    """An image whose layers are files in ``directory`` (gzip blobs, or plain tars with ``gz=False``),
    made by the shared generator (tests/imagegen.py)."""
    return generate(directory, list(layers), gz=gz, config={"Cmd": [cmd], "Env": ["PATH=/bin"]})


@dataclass
class StrataRun:
    env: dict[str, str]
    root: Path

    def __call__(self, *args: str, input: str | None = None, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*STRATA, *args], env=self.env, input=input, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"strata {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res


@pytest.fixture
def strata(tmp_path: Path) -> StrataRun:
    root = tmp_path / "root"
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "STRATA_"))}
    env.update(STRATA_ROOT=str(root), DOCKER_CONFIG=str(cfg), STRATA_CONFIG=str(tmp_path / "strata.json"))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    return StrataRun(env, root)


@pytest.fixture
def strata_registry() -> Iterator[ServerThread]:
    """strata's own registry (in-memory storage, no auth) in a thread on a loopback port."""
    reg = ServerThread({"storage": {"inmemory": {}}})
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def fault_registry() -> Iterator[FaultRegistry]:
    reg = FaultRegistry().start()
    try:
        yield reg
    finally:
        reg.stop()


def config_json(diff_ids: list[str]) -> dict[str, object]:
    return {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}


def gz_layer(files: dict[str, bytes], level: int = 6) -> tuple[bytes, str]:
    tar = layer_tar(files)
    return gzip.compress(tar, compresslevel=level, mtime=0), str(digest_bytes(tar))


__all__ = ["StrataRun", "config_json", "gz_layer", "json", "layer_tar", "make_image"]
