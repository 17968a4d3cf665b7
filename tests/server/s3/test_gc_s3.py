"""Garbage collection over the S3 driver: orphans and untagged manifests go, referenced blobs stay,
abandoned uploads (an unfinished multipart upload included) are purged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.helpers import Client, ServerThread, push_blob, push_image, random_blob
from strata.server.gc import GCLock, collect
from strata.server.storage.registry import Registry
from strata.server.storage.s3 import S3Driver

from .radosgw import session_radosgw

pytestmark = pytest.mark.peers
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _pullable(c: Client, repo: str, ref: str) -> bool:
    import json

    r = c.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
    if r.status != 200:
        return False
    doc = json.loads(r.body)
    digests = [doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])]
    return all(c.get(f"/v2/{repo}/blobs/{d}").status == 200 for d in digests)


def test_gc_on_s3() -> None:
    rgw = session_radosgw()
    params: dict[str, Any] = rgw.s3_params(rgw.new_bucket(), rootdirectory="/gc", chunksize=5 << 20)
    with ServerThread({"storage": {"s3": params, "redirect": {"disable": True}, "delete": {"enabled": True}}}) as reg:
        driver = S3Driver.from_parameters(params)

        def gc(**kw: Any) -> Any:
            return collect(Registry(driver), GCLock(driver), **kw)

        push_image(reg, "app", "v1", layers=[random_blob(6 << 20)])
        orphan = push_blob(reg, "app", random_blob(100))
        untagged_d, _ = push_image(reg, "app", "v2")
        assert reg.request("DELETE", "/v2/app/manifests/v2").status == 202
        upload = reg.request("POST", "/v2/app/blobs/uploads/").header("Location")
        abandoned = driver.writer(f"/docker/registry/v2/repositories/app/_uploads/{str(upload).rsplit('/', 1)[1]}/data",
                                  append=True)  # fmt: skip
        abandoned.write(random_blob(6 << 20))  # a part sent, never completed: a worker died mid-PATCH
        time.sleep(1.1)
        report = gc(grace_period=0, upload_purge_age=0, delete_untagged=True)
        assert [str(d) for d in report.deleted_blobs].count(orphan) == 1
        assert [str(d) for _, d in report.deleted_manifests] == [untagged_d]
        assert len(report.deleted_uploads) == 1
        assert reg.request("HEAD", f"/v2/app/blobs/{orphan}").status == 404
        assert reg.get(f"/v2/app/manifests/{untagged_d}").status == 404
        assert _pullable(reg, "app", "v1")
        pending = driver.bucket.client.list_multipart_uploads(Bucket=driver.bucket.name).get("Uploads", [])
        assert pending == []


def test_garbage_collect_command_on_s3(tmp_path: Path) -> None:
    rgw = session_radosgw()
    params: dict[str, Any] = rgw.s3_params(rgw.new_bucket(), rootdirectory="/gccli")
    raw = {"storage": {"s3": params, "redirect": {"disable": True}, "delete": {"enabled": True}}}
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")}

    def gc(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "strata", "registry", "garbage-collect", "--config", str(cfg),
                              "--grace-period", "0s", *args], capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0, res.stderr
        return res.stdout

    with ServerThread(raw) as reg:
        push_image(reg, "app", "v1")
        orphan = push_blob(reg, "app", random_blob(100))
        time.sleep(1.1)
        assert f"would delete blob {orphan}" in gc("--dry-run")
        assert reg.request("HEAD", f"/v2/app/blobs/{orphan}").status == 200
        out = gc()
        assert f"deleted blob {orphan}" in out and "1 blobs and 0 manifests deleted" in out
        assert reg.request("HEAD", f"/v2/app/blobs/{orphan}").status == 404
        assert _pullable(reg, "app", "v1")
