"""Registries on S3 in their own processes: ``strata registry serve`` and distribution 2.8's
``docker-registry``, each given a ``storage.s3`` configuration for a radosgw bucket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from peers import REGISTRY_BIN, ensure_debs, free_port

from .radosgw import Radosgw

__all__ = ["S3RegistryProcess", "registry_config", "start_distribution_on_s3", "start_strata_on_s3"]


def registry_config(rgw: Radosgw, bucket: str, port: int, *, redirect: bool, root: str = "/reg",
                    **s3: Any) -> dict[str, Any]:  # fmt: skip
    params = rgw.s3_params(bucket, rootdirectory=root, chunksize=5 << 20, **s3)
    return {
        "version": 0.1,
        "log": {"level": "info"},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "s3-tests"},
        "storage": {"s3": params, "redirect": {"disable": not redirect}, "delete": {"enabled": True},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
    }  # fmt: skip


class S3RegistryProcess:
    """A registry process on a loopback port; ``url`` is ``127.0.0.1:PORT``."""

    def __init__(self, argv: list[str], config: dict[str, Any], workdir: Path, env: dict[str, str]) -> None:
        self.config = config
        self.url = config["http"]["addr"]
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = workdir / f"config-{self.url.rsplit(':', 1)[1]}.yml"
        cfg.write_text(yaml.safe_dump(config))
        self.log = cfg.with_suffix(".log")
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([*argv, str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)  # fmt: skip
        deadline = time.monotonic() + 60  # a Python server on S3, late on a loaded machine
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"registry did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.url}/v2/", timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> S3RegistryProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_strata_on_s3(rgw: Radosgw, bucket: str, workdir: Path, *, redirect: bool = True, workers: int = 1,
                       **s3: Any) -> S3RegistryProcess:  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")}
    config = registry_config(rgw, bucket, free_port(), redirect=redirect, **s3)
    config["http"]["workers"] = workers
    return S3RegistryProcess([sys.executable, "-m", "strata", "registry", "serve", "--config"], config, workdir, env)


def start_distribution_on_s3(rgw: Radosgw, bucket: str, workdir: Path, *, redirect: bool = False,
                             **s3: Any) -> S3RegistryProcess:  # fmt: skip
    ensure_debs("docker-registry")
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # 2.8.2 refuses an unloadable bundle
    config = registry_config(rgw, bucket, free_port(), redirect=redirect, **s3)
    return S3RegistryProcess([REGISTRY_BIN, "serve"], config, workdir, env)
