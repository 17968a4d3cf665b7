"""``strata registry serve`` with ``storage.s3`` on a real radosgw: the HTTP API, redirects, uploads
spread over two processes, docker/skopeo/strata push and pull, and distribution 2.8.2 reading the
same bucket (the layout is distribution's)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from peers import Dockerd, Skopeo
from server.helpers import Client, sha
from server.ocilayout import make_oci_layout

from .radosgw import Radosgw, session_radosgw
from .servers import S3RegistryProcess, start_distribution_on_s3, start_strata_on_s3

pytestmark = pytest.mark.peers


@pytest.fixture
def rgw() -> Radosgw:
    return session_radosgw()


def _client(reg: S3RegistryProcess) -> Client:
    host, port = reg.url.rsplit(":", 1)
    return Client(host, int(port))


def _keys(rgw: Radosgw, bucket: str) -> list[str]:
    pages = rgw.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _patch_upload(c: Client, repo: str, pieces: list[bytes], start: str | None = None) -> str:
    """PATCH ``pieces`` one by one; returns the upload's location."""
    loc = start
    if loc is None:
        r = c.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert r.status == 202, r.body
        loc = r.header("Location")
    assert loc is not None
    off = int((c.request("GET", loc).header("Range") or "0-0").split("-")[1]) + 1 if start else 0
    for piece in pieces:
        r = c.request("PATCH", loc, body=piece, headers={
            "Content-Range": f"{off}-{off + len(piece) - 1}", "Content-Type": "application/octet-stream"})  # fmt: skip
        assert r.status == 202, r.body
        off += len(piece)
        assert r.header("Range") == f"0-{off - 1}"
    return loc


def test_chunked_upload_lands_in_distributions_layout_and_get_redirects(rgw: Radosgw, tmp_path: Path) -> None:
    bucket = rgw.new_bucket()
    data = os.urandom(13 << 20)
    d = sha(data)
    with start_strata_on_s3(rgw, bucket, tmp_path) as reg:
        c = _client(reg)
        # 3 MiB (one PUT), then 4 MiB (read back and re-uploaded), then 6 MiB (the 7 MiB copied server-side)
        loc = _patch_upload(c, "s3/chunked", [data[: 3 << 20], data[3 << 20 : 7 << 20], data[7 << 20 :]])
        r = c.request("PUT", f"{loc}?digest={d}")
        assert r.status == 201, r.body
        keys = _keys(rgw, bucket)
        assert f"reg/docker/registry/v2/blobs/sha256/{d[7:9]}/{d[7:]}/data" in keys
        assert f"reg/docker/registry/v2/repositories/s3/chunked/_layers/sha256/{d[7:]}/link" in keys
        assert not [k for k in keys if "/_uploads/" in k]
        assert rgw.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

        r = c.request("GET", f"/v2/s3/chunked/blobs/{d}")
        assert r.status == 307
        url = r.header("Location") or ""
        assert url.startswith(f"{rgw.endpoint}/{bucket}/reg/docker/registry/v2/blobs/sha256/") and "X-Amz-Signature=" in url
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert sha(resp.read()) == d
        again = c.request("GET", f"/v2/s3/chunked/blobs/{d}")  # signed once, handed out again (REDIRECT_REUSE)
        assert again.status == 307 and again.header("Location") == url
        head = c.request("HEAD", f"/v2/s3/chunked/blobs/{d}")
        assert head.status == 200 and head.header("Content-Length") == str(len(data))


def test_upload_started_on_one_process_finishes_on_another(rgw: Radosgw, tmp_path: Path) -> None:
    """No upload state lives in a process: the second one reads the data back to verify it."""
    bucket = rgw.new_bucket()
    data = os.urandom((6 << 20) + 12345)
    d = sha(data)
    # multipart copies above 5 MiB: the blob's move into place is a multipart server-side copy
    opts: dict[str, Any] = {"multipartcopythresholdsize": 5 << 20, "multipartcopychunksize": 5 << 20}
    with start_strata_on_s3(rgw, bucket, tmp_path, redirect=False, **opts) as a, \
            start_strata_on_s3(rgw, bucket, tmp_path, redirect=False, **opts) as b:  # fmt: skip
        loc = _patch_upload(_client(a), "s3/replicas", [data[:1000], data[1000 : 6 << 20]])
        _patch_upload(_client(b), "s3/replicas", [data[6 << 20 :]], start=loc)
        bad = _client(a).request("PUT", f"{loc}?digest=sha256:{'0' * 64}")
        assert bad.status == 400 and bad.codes == ["DIGEST_INVALID"]
        loc = _patch_upload(_client(a), "s3/replicas", [data[:1000], data[1000 : 6 << 20]])
        _patch_upload(_client(b), "s3/replicas", [data[6 << 20 :]], start=loc)
        assert _client(a).request("PUT", f"{loc}?digest={d}").status == 201
        for reg in (a, b):
            r = _client(reg).get(f"/v2/s3/replicas/blobs/{d}")
            assert r.status == 200 and sha(r.body) == d
        part = _client(b).get(f"/v2/s3/replicas/blobs/{d}", headers={"Range": "bytes=100-199"})
        assert part.status == 206 and part.body == data[100:200]
        assert part.header("Content-Range") == f"bytes 100-199/{len(data)}"
        assert _client(a).get(f"/v2/s3/replicas/blobs/sha256:{'1' * 64}").codes == ["BLOB_UNKNOWN"]


def test_bad_s3_configuration_is_refused_at_start(rgw: Radosgw, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yml"
    cfg.write_text(json.dumps({"storage": {"s3": rgw.s3_params(chunksize=1024)}}))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")}
    res = subprocess.run([sys.executable, "-m", "strata", "registry", "serve", "--config", str(cfg)],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert res.returncode == 1
    assert res.stderr.strip().endswith(
        "Error: the chunksize 1024 parameter should be a number that is larger than or equal to 5242880"
    ), res.stderr


def test_docker_skopeo_and_distribution_share_strata_s3(
    rgw: Radosgw, tmp_path: Path, dockerd: Dockerd, skopeo: Skopeo
) -> None:
    bucket = rgw.new_bucket()
    with start_strata_on_s3(rgw, bucket, tmp_path) as reg, start_distribution_on_s3(rgw, bucket, tmp_path) as dist:
        ref = f"{reg.url}/s3/busybox:1"
        # a layer of this test's own: an image other tests keep in the session's dockerd cannot hold it,
        # so removing it really makes the pull fetch the config and the layer
        unique = tmp_path / "unique.tar"
        with tarfile.open(unique, "w") as tar:
            data = os.urandom(64)
            info = tarfile.TarInfo("unique")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        dockerd.run("import", str(unique), ref)
        image_id = dockerd.run("inspect", "--format", "{{.Id}}", ref).stdout.strip()
        assert "digest: sha256:" in dockerd.run("push", ref).stdout
        dockerd.run("rmi", ref)
        dockerd.run("pull", ref)
        assert dockerd.run("inspect", "--format", "{{.Id}}", ref).stdout.strip() == image_id
        dockerd.run("rmi", ref)
        redirected = [line for line in reg.log.read_text().splitlines() if "/blobs/sha256:" in line
                      and '" 307 ' in line and "docker/20.10" in line]  # fmt: skip
        assert len(redirected) == 2, redirected  # config and layer, fetched from the object store
        # distribution 2.8.2 serves what strata stored, and strata serves what distribution stored
        mine = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout)
        theirs = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{dist.url}/s3/busybox:1").stdout)
        assert mine == theirs
        skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
               f"docker://{dist.url}/s3/busybox:1", f"docker://{dist.url}/s3/from-dist:2")  # fmt: skip
        skopeo("copy", "--src-tls-verify=false", f"docker://{reg.url}/s3/from-dist:2", f"oci:{tmp_path / 'oci'}:x")
        skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'oci'}:x", f"docker://{reg.url}/s3/skopeo:3")
        insp = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{dist.url}/s3/skopeo:3").stdout)
        assert insp["Digest"].startswith("sha256:")


def test_strata_push_pull_through_strata_s3(rgw: Radosgw, tmp_path: Path, busybox_tar: Path) -> None:
    bucket = rgw.new_bucket()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "STRATA_"))}
    env.update(STRATA_ROOT=str(tmp_path / "root"), DOCKER_CONFIG=str(tmp_path / "dc"),
               STRATA_CONFIG=str(tmp_path / "strata.json"),
               PYTHONPATH=str(Path(__file__).resolve().parents[3] / "src"))  # fmt: skip

    def strata(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "strata", *args], env=env, capture_output=True, text=True,
                             timeout=300)  # fmt: skip
        assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res.stdout

    with start_strata_on_s3(rgw, bucket, tmp_path) as reg:
        ref = f"{reg.url}/s3/strata:1"
        image_id = strata("import", str(busybox_tar), ref).strip()
        out = strata("push", ref)
        assert "Pushed" in out and "digest: sha256:" in out
        assert "Layer already exists" in strata("push", ref)
        strata("rmi", ref)
        assert "Downloaded newer image" in strata("pull", ref)
        assert strata("inspect", "--format", "{{.Id}}", ref).strip() == image_id


def test_two_workers_on_s3(rgw: Radosgw, tmp_path: Path, skopeo: Skopeo, busybox_tar: Path) -> None:
    """``http.workers: 2`` over S3: uploads whose requests land on either worker, then skopeo both ways."""
    bucket = rgw.new_bucket()
    with start_strata_on_s3(rgw, bucket, tmp_path, workers=2) as reg:
        c = _client(reg)
        blobs = [os.urandom((1 << 20) + i) for i in range(6)]
        for data in blobs:
            loc = _patch_upload(c, "s3/workers", [data[:1000], data[1000:]])
            assert c.request("PUT", f"{loc}?digest={sha(data)}").status == 201
        for data in blobs:
            assert c.request("HEAD", f"/v2/s3/workers/blobs/{sha(data)}").status == 200
        digest = make_oci_layout(tmp_path / "oci", [busybox_tar], extra_random=12 << 20)
        skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'oci'}:latest", f"docker://{reg.url}/s3/w:1")
        skopeo("copy", "--src-tls-verify=false", f"docker://{reg.url}/s3/w:1", f"oci:{tmp_path / 'back'}:x")
        index = json.loads((tmp_path / "back" / "index.json").read_text())
        assert index["manifests"][0]["digest"] == digest


def test_a_replica_killed_mid_patch_loses_nothing_another_cannot_finish(rgw: Radosgw, tmp_path: Path) -> None:
    """kill -9 during a PATCH: the upload keeps what earlier requests stored; another process resumes it."""
    import http.client

    bucket = rgw.new_bucket()
    data = os.urandom(20 << 20)
    d = sha(data)
    with start_strata_on_s3(rgw, bucket, tmp_path, redirect=False) as a, \
            start_strata_on_s3(rgw, bucket, tmp_path, redirect=False) as b:  # fmt: skip
        loc = _patch_upload(_client(a), "s3/killed", [data[: 3 << 20]])
        host, port = a.url.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.putrequest("PATCH", loc)
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(len(data) - (3 << 20)))
        conn.endheaders()
        conn.send(data[3 << 20 : 15 << 20])  # parts of this request reach S3, the request never ends
        time.sleep(1.0)
        a.proc.kill()
        a.proc.wait(10)
        conn.close()
        assert rgw.client().list_multipart_uploads(Bucket=bucket).get("Uploads")  # what A had begun to send
        status = _client(b).request("GET", loc)
        assert status.status == 204 and status.header("Range") == f"0-{(3 << 20) - 1}"
        _patch_upload(_client(b), "s3/killed", [data[3 << 20 :]], start=loc)
        assert _client(b).request("PUT", f"{loc}?digest={d}").status == 201
        r = _client(b).get(f"/v2/s3/killed/blobs/{d}")
        assert r.status == 200 and sha(r.body) == d
        assert rgw.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # aborted with the upload
