"""Stateless replicas: 3 ``strata registry serve`` over one radosgw bucket and one Redis, behind
HAProxy (round-robin, no stickiness): uploads whose requests land on different replicas, docker,
skopeo and strata through the balancer, kill -9 of a replica during a push, GC in a loop on one
replica while pushes go through the others, and what Redis shares (descriptors, rate limits)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from peers import Dockerd, Skopeo
from server.helpers import Client, push_blob, push_image, sha
from server.ocilayout import make_oci_layout
from server.s3.cluster import Cluster, start_cluster
from server.s3.radosgw import Radosgw, session_radosgw
from server.s3.redisd import RedisServer, session_redis

pytestmark = pytest.mark.peers
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def rgw() -> Radosgw:
    return session_radosgw()


@pytest.fixture
def rds() -> RedisServer:
    return session_redis()


@pytest.fixture
def cluster(rgw: Radosgw, rds: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    with start_cluster(rgw, rds, tmp_path / "cluster") as cl:
        yield cl


def _client(url: str) -> Client:
    host, port = url.rsplit(":", 1)
    return Client(host, int(port))


def _pullable(c: Client, repo: str, ref: str) -> bool:
    r = c.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"})
    if r.status != 200:
        return False
    doc = json.loads(r.body)
    digests = [doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])]
    return all(c.request("HEAD", f"/v2/{repo}/blobs/{d}").status == 200 for d in digests)


def test_chunked_upload_whose_patches_land_on_every_replica(cluster: Cluster) -> None:
    c = _client(cluster.url)
    data = os.urandom((7 << 20) + 321)
    d = sha(data)
    r = c.request("POST", "/v2/lb/chunked/blobs/uploads/")
    assert r.status == 202, r.body
    loc, served = r.header("Location"), {r.header("X-Served-By")}
    assert loc is not None
    step = (1 << 20) + 7
    for off in range(0, len(data), step):
        piece = data[off : off + step]
        r = c.request("PATCH", loc, body=piece, headers={
            "Content-Range": f"{off}-{off + len(piece) - 1}", "Content-Type": "application/octet-stream"})  # fmt: skip
        assert r.status == 202, r.body
        assert r.header("Range") == f"0-{off + len(piece) - 1}"
        served.add(r.header("X-Served-By"))
    r = c.request("PUT", f"{loc}?digest={d}")
    assert r.status == 201, r.body
    served.add(r.header("X-Served-By"))
    assert served == {"r0", "r1", "r2"}  # no stickiness: the upload crossed all three
    for reg in cluster.replicas:
        got = _client(reg.url).get(f"/v2/lb/chunked/blobs/{d}")
        assert got.status == 200 and sha(got.body) == d


def test_strata_push_and_pull_through_the_balancer(cluster: Cluster, tmp_path: Path, busybox_tar: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "STRATA_"))}
    env.update(STRATA_ROOT=str(tmp_path / "root"), DOCKER_CONFIG=str(tmp_path / "dc"),
               STRATA_CONFIG=str(tmp_path / "strata.json"), PYTHONPATH=SRC)  # fmt: skip

    def strata(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "strata", *args], env=env, capture_output=True, text=True,
                             timeout=300)  # fmt: skip
        assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res.stdout

    ref = f"{cluster.url}/lb/strata:1"
    image_id = strata("import", str(busybox_tar), ref).strip()
    out = strata("push", ref)
    assert "Pushed" in out and "digest: sha256:" in out
    assert "Layer already exists" in strata("push", ref)
    strata("rmi", ref)
    assert "Downloaded newer image" in strata("pull", ref)
    assert strata("inspect", "--format", "{{.Id}}", ref).strip() == image_id
    for reg in cluster.replicas:
        assert _pullable(_client(reg.url), "lb/strata", "1")


def test_docker_and_skopeo_push_and_pull_through_the_balancer(
    cluster: Cluster, tmp_path: Path, dockerd: Dockerd, docker_busybox: str, skopeo: Skopeo, busybox_tar: Path
) -> None:
    ref = f"{cluster.url}/lb/busybox:1"
    image_id = dockerd.run("inspect", "--format", "{{.Id}}", docker_busybox).stdout.strip()
    dockerd.run("tag", docker_busybox, ref)
    assert "digest: sha256:" in dockerd.run("push", ref).stdout
    dockerd.run("rmi", ref, docker_busybox)
    try:
        dockerd.run("pull", ref)
    finally:
        dockerd.run("tag", ref, docker_busybox, check=False)
    assert dockerd.run("inspect", "--format", "{{.Id}}", ref).stdout.strip() == image_id
    dockerd.run("rmi", ref)
    digest = make_oci_layout(tmp_path / "oci", [busybox_tar], extra_random=12 << 20)
    skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'oci'}:latest", f"docker://{cluster.url}/lb/sk:1")
    skopeo("copy", "--src-tls-verify=false", f"docker://{cluster.url}/lb/sk:1", f"oci:{tmp_path / 'back'}:x")
    assert json.loads((tmp_path / "back" / "index.json").read_text())["manifests"][0]["digest"] == digest
    log = "".join(r.log.read_text(errors="replace") for r in cluster.replicas)
    assert "Traceback" not in log


def test_kill_9_of_a_replica_during_a_push_loses_nothing(
    cluster: Cluster, tmp_path: Path, skopeo: Skopeo, busybox_tar: Path
) -> None:
    """A replica dies mid-push: the push through the balancer is finished by the others (skopeo's own
    retries, or one more push), and every replica left serves the whole image."""
    digest = make_oci_layout(tmp_path / "oci", [busybox_tar], extra_random=48 << 20)
    dest = f"docker://{cluster.url}/lb/killed:1"
    args = ["copy", "--dest-tls-verify=false", "--retry-times", "3", f"oci:{tmp_path / 'oci'}:latest", dest]
    result: list[Any] = []
    pusher = threading.Thread(target=lambda: result.append(skopeo(*args, check=False)))
    pusher.start()
    time.sleep(1.0)
    assert pusher.is_alive()  # the push is under way when the replica dies
    victim = cluster.replicas[1]
    victim.proc.kill()
    victim.proc.wait(10)
    pusher.join(300)
    print("push through the kill:", result[0].returncode, result[0].stderr[-500:])
    if result[0].returncode != 0:  # a request the dead replica held failed: the client pushes again
        skopeo(*args)
    for reg in (cluster.replicas[0], cluster.replicas[2]):
        assert _pullable(_client(reg.url), "lb/killed", "1")
    skopeo("copy", "--src-tls-verify=false", dest, f"oci:{tmp_path / 'back'}:x")
    assert json.loads((tmp_path / "back" / "index.json").read_text())["manifests"][0]["digest"] == digest


def _gc(cluster: Cluster, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": SRC}
    res = subprocess.run([sys.executable, "-m", "strata", "registry", "garbage-collect", "--config",
                          str(cluster.config_path(0)), *args], capture_output=True, text=True, env=env,
                         timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_gc_in_a_loop_on_one_replica_while_pushes_go_through_the_others(cluster: Cluster, rds: RedisServer) -> None:
    r1, r2 = (_client(r.url) for r in cluster.replicas[1:])
    base = os.urandom(300_000)
    push_image(r1, "lb/gc", "base", layers=[base])
    orphans = [push_blob(r2, "lb/gc", os.urandom(1000 + i)) for i in range(5)]
    time.sleep(2.5)  # base and the orphans are now older than the grace period
    stop = threading.Event()
    passes: list[str] = []

    def loop() -> None:
        while not stop.is_set():
            passes.append(_gc(cluster, "--grace-period", "2s", "--delete-untagged"))

    gc = threading.Thread(target=loop)
    gc.start()
    pushed: list[str] = []
    late: list[str] = []
    try:
        deadline = time.monotonic() + 25
        i = 0
        while time.monotonic() < deadline or len(passes) < 3 or len(pushed) < 5:
            assert time.monotonic() < deadline + 300, (passes, pushed, late)
            c = (r1, r2)[i % 2]
            began = time.time()
            try:
                push_image(c, "lb/gc", f"t{i}", layers=[base, os.urandom(200_000 + i)])
            except AssertionError as e:
                # a blob of this push was older than the grace period when a sweep began, its manifest not
                # yet put: a push slower than the grace period (a loaded machine), which it does not cover
                if "MANIFEST_BLOB_UNKNOWN" not in str(e) or time.time() - began <= 2:
                    raise
                late.append(f"t{i}")
            else:
                pushed.append(f"t{i}")
            i += 1
    finally:
        stop.set()
        gc.join(300)
    assert len(passes) >= 3 and len(pushed) >= 5, (passes, pushed, late)
    assert all(f"deleted blob {d}" in "".join(passes) for d in orphans)
    lb = _client(cluster.url)
    for tag in ["base", *pushed]:
        assert _pullable(lb, "lb/gc", tag), tag
    assert rds.client().zcard(f"{_namespace(cluster)}:gc:readers") == 0
    assert not rds.client().exists(f"{_namespace(cluster)}:gc:exclusive")


def _namespace(cluster: Cluster) -> str:
    from strata.server.config import load_config
    from strata.server.sharedstate import namespace

    return namespace(load_config(str(cluster.config_path(0)), env={}))


def test_descriptor_cache_in_redis_is_dropped_by_gc(cluster: Cluster, rds: RedisServer) -> None:
    r1, r2 = (_client(r.url) for r in cluster.replicas[1:])
    orphan = push_blob(r1, "lb/cache", os.urandom(5000))
    assert r2.request("HEAD", f"/v2/lb/cache/blobs/{orphan}").status == 200
    ns = _namespace(cluster)
    assert rds.client().exists(f"{ns}:blob:{orphan}") and rds.client().exists(f"{ns}:link:lb/cache:{orphan}")
    time.sleep(1.1)
    assert f"deleted blob {orphan}" in _gc(cluster, "--grace-period", "1s")
    assert not rds.client().exists(f"{ns}:blob:{orphan}")
    for reg in cluster.replicas:
        assert _client(reg.url).request("HEAD", f"/v2/lb/cache/blobs/{orphan}").status == 404


def test_rate_limit_is_one_bucket_across_replicas(rgw: Radosgw, rds: RedisServer, tmp_path: Path) -> None:
    # a token every 10 s: the 9 requests through the balancer and S3 may take seconds on a loaded machine
    with start_cluster(rgw, rds, tmp_path / "cl", http={"ratelimit": {"rate": 0.1, "burst": 6}}) as cl:
        lb = _client(cl.url)
        for key in rds.client().keys(f"{_namespace(cl)}:ratelimit:*"):  # start-up probes spent tokens
            rds.client().delete(key)
        began = time.monotonic()
        statuses = [lb.get("/v2/_catalog") for _ in range(9)]
        took = time.monotonic() - began
        assert [r.status for r in statuses] == [200] * 6 + [429] * 3, took  # 6 in all, not 6 per replica
        assert {r.header("X-Served-By") for r in statuses} == {"r0", "r1", "r2"}
        # whole seconds until the next token: 10 less the time the 9 took (10 when within a second)
        waits = {str(n) for n in range(math.ceil(10 - took), 11)}
        assert statuses[-1].codes == ["TOOMANYREQUESTS"] and statuses[-1].header("Retry-After") in waits, took
        # behind the balancer a client is the address HAProxy forwards, not the balancer's own
        other = lb.get("/v2/_catalog", headers={"X-Forwarded-For": "192.0.2.7"})
        assert other.status == 200 and lb.get("/v2/_catalog").status == 429


def _racing_patches(a: str, b: str, writing: Callable[[str], bool] | None = None) -> tuple[str, bytes, bytes, int]:
    """B starts an upload; A receives a slow PATCH at offset 0 while B receives a fast one at offset 0.
    ``writing(uid)`` tells when A holds the upload (with Redis: its lease is there); B's PATCH is sent only
    then (a loaded machine can take longer than any fixed wait to get A there). Returns the upload's
    location, A's bytes, B's bytes and the status B answered."""
    import http.client

    x, y = os.urandom(1 << 20), os.urandom(1 << 20)
    r = _client(b).request("POST", "/v2/lb/race/blobs/uploads/")
    loc = r.header("Location")
    assert r.status == 202 and loc is not None
    host, port = a.rsplit(":", 1)
    slow = http.client.HTTPConnection(host, int(port), timeout=60)
    slow.putrequest("PATCH", loc)
    slow.putheader("Content-Type", "application/octet-stream")
    slow.putheader("Content-Length", str(len(x)))
    slow.endheaders()
    slow.send(x[: len(x) // 2])
    time.sleep(0.5)  # replica A is writing the upload now (without Redis nothing tells; any order does)
    uid = urllib.parse.urlsplit(loc).path.rstrip("/").rsplit("/", 1)[1]
    deadline = time.monotonic() + 60
    while writing is not None and not writing(uid):
        assert time.monotonic() < deadline, "replica A never took the upload"
        time.sleep(0.05)
    fast = _client(b).request("PATCH", loc, body=y, headers={"Content-Type": "application/octet-stream"})
    slow.send(x[len(x) // 2 :])
    assert slow.getresponse().status == 202
    slow.close()
    return loc, x, y, fast.status


def test_two_replicas_cannot_write_one_upload_at_once(cluster: Cluster, rds: RedisServer) -> None:
    """PATCHes at the same offset on two replicas: without one writer at a time the store keeps the
    last one's bytes while the other's in-memory hash vouches for its own, and a blob would be stored
    under a digest its bytes do not have."""
    ns = _namespace(cluster)
    held = lambda uid: bool(rds.client().exists(f"{ns}:upload:{uid}"))  # noqa: E731
    loc, _, y, fast = _racing_patches(cluster.replicas[0].url, cluster.replicas[1].url, held)
    assert fast >= 400  # refused: another replica is writing this upload
    b = _client(cluster.replicas[1].url)
    bad = b.request("PUT", f"{loc}?digest={sha(y)}")
    assert bad.status == 400 and bad.codes == ["DIGEST_INVALID"]
    assert _client(cluster.url).request("HEAD", f"/v2/lb/race/blobs/{sha(y)}").status == 404
    loc, x, _, _ = _racing_patches(cluster.replicas[0].url, cluster.replicas[1].url, held)
    assert b.request("PUT", f"{loc}?digest={sha(x)}").status == 201  # what A wrote is what is stored
    assert sha(_client(cluster.url).get(f"/v2/lb/race/blobs/{sha(x)}").body) == sha(x)


def test_without_redis_racing_replicas_cannot_store_a_blob_under_a_wrong_digest(
    rgw: Radosgw, tmp_path: Path
) -> None:
    """No upload lock without Redis: both PATCHes are taken and the store keeps one; the replica whose
    bytes were lost hashes what is stored at commit instead of trusting its memory."""
    from server.s3.servers import start_strata_on_s3

    bucket = rgw.new_bucket()
    with start_strata_on_s3(rgw, bucket, tmp_path, redirect=False) as a, \
            start_strata_on_s3(rgw, bucket, tmp_path, redirect=False) as b:  # fmt: skip
        loc, _, y, fast = _racing_patches(a.url, b.url)
        assert fast == 202
        r = _client(b.url).request("PUT", f"{loc}?digest={sha(y)}")
        assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
        assert _client(a.url).request("HEAD", f"/v2/lb/race/blobs/{sha(y)}").status == 404
