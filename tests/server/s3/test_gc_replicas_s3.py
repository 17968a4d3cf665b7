"""GC on one replica while pushes go through the others, with no Redis: the replicas share only the
radosgw bucket, so the GC lock's handshake goes through it (``strata.server.storelock``).

The pushes keep re-using blobs that are unreferenced and older than the grace period (what a push
of a layer that an earlier, deleted image had looks like): exactly what a sweep that listed them a
moment earlier is about to delete. Every push that completed must stay pullable."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from server.helpers import Client, push_blob, push_image
from server.s3.cluster import Cluster, start_cluster
from server.s3.radosgw import session_radosgw
from strata.server.storage.driver import PathNotFound
from strata.server.storage.s3 import S3Driver
from strata.server.storelock import LOCK_ROOT

pytestmark = pytest.mark.peers
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SRC = str(Path(__file__).resolve().parents[3] / "src")
GRACE = 1.0


def _client(url: str) -> Client:
    host, port = url.rsplit(":", 1)
    return Client(host, int(port))


def _missing(c: Client, repo: str, tag: str) -> list[str]:
    """What of the pushed image ``tag`` cannot be fetched any more (empty: all of it can)."""
    r = c.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    if r.status != 200:
        return [f"manifest {tag}: {r.status}"]
    doc = json.loads(r.body)
    digests = [doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])]
    return [d for d in digests if c.get(f"/v2/{repo}/blobs/{d}").status != 200]


def _gc(cluster: Cluster) -> str:
    env = {**os.environ, "PYTHONPATH": SRC}
    res = subprocess.run([sys.executable, "-m", "strata", "registry", "garbage-collect", "--config",
                          str(cluster.config_path(0)), "--grace-period", f"{GRACE}s"],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout


class _Orphans:
    """Unreferenced blobs with the time they were pushed; a feeder keeps adding fresh ones."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pushed: list[tuple[float, bytes]] = []

    def add(self, data: bytes) -> None:
        with self.lock:
            self.pushed.append((time.time(), data))

    def stale(self) -> bytes | None:
        """One pushed more than the grace period ago (a sweep may be deleting it), taken off the list."""
        with self.lock:
            old = [i for i, (t, _) in enumerate(self.pushed) if time.time() - t > GRACE * 1.5]
            return self.pushed.pop(random.choice(old))[1] if old else None


def _until_stopped(errors: list[BaseException], loop: Callable[..., None]) -> Callable[..., None]:
    def run(*args: object) -> None:
        try:
            loop(*args)
        except BaseException as e:  # the test asserts there were none
            errors.append(e)

    return run


def _feed(c: Client, orphans: _Orphans, stop: threading.Event) -> None:
    while not stop.is_set():
        data = os.urandom(512) + os.urandom(4)
        push_blob(c, "nolock/gc", data)
        orphans.add(data)
        time.sleep(0.02)


def _push(c: Client, name: str, orphans: _Orphans, stop: threading.Event, done: list[str], late: list[str]) -> None:
    i = 0
    while not stop.is_set():
        reused = [b for b in (orphans.stale(), orphans.stale()) if b is not None]
        began = time.time()
        try:
            push_image(c, "nolock/gc", f"{name}{i}", layers=[*reused, os.urandom(2000)])
        except AssertionError as e:
            # a blob of this push was older than the grace period when a sweep began, its manifest not
            # yet put: what the grace period does not cover (a slow push on a loaded machine), never
            # within it (a blob commit refreshes the blob's time)
            if "MANIFEST_BLOB_UNKNOWN" not in str(e) or time.time() - began <= GRACE:
                raise
            late.append(f"{name}{i}")
        else:
            done.append(f"{name}{i}")
        i += 1


def test_gc_in_a_loop_on_one_replica_while_pushes_go_through_the_others_without_redis(tmp_path: Path) -> None:
    rgw = session_radosgw()
    with start_cluster(rgw, None, tmp_path / "cluster", gc={"graceperiod": f"{GRACE}s"}) as cluster:
        r1, r2 = (_client(r.url) for r in cluster.replicas[1:])
        orphans = _Orphans()
        for _ in range(40):
            data = os.urandom(700)
            push_blob(r1, "nolock/gc", data)
            orphans.add(data)
        time.sleep(GRACE * 2)
        stop = threading.Event()
        passes: list[str] = []
        done1: list[str] = []
        done2: list[str] = []
        late: list[str] = []
        errors: list[BaseException] = []
        threads = [
            threading.Thread(
                target=_until_stopped(errors, _feed), args=(_client(cluster.replicas[2].url), orphans, stop)
            ),
            threading.Thread(target=_until_stopped(errors, _push), args=(r1, "a", orphans, stop, done1, late)),
            threading.Thread(target=_until_stopped(errors, _push), args=(r2, "b", orphans, stop, done2, late)),
        ]
        for t in threads:
            t.start()
        try:
            # 30 s and 4 sweeps, and enough pushes to interleave with them: each push takes the lock
            # shared 4 times, between sweeps. Back to back, sweeps starve the pushes on a loaded machine
            # (4 pushes in 240 s with the cluster on a third of a core): a sweep starts when a push has
            # finished since the last one began (or after 20 s), while the other push is under way
            start = time.monotonic()
            while (time.monotonic() < start + 30 or len(passes) < 4
                   or len(done1) + len(done2) < 8) and time.monotonic() < start + 240:
                pushed = len(done1) + len(done2) + len(late)
                passes.append(_gc(cluster))
                paced = time.monotonic() + 20
                while len(done1) + len(done2) + len(late) == pushed and time.monotonic() < paced:
                    time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join(120)
        out = "".join(passes)
        assert out.count("deleted blob") >= 10, out  # the sweeps did delete what no push re-used
        assert len(done1) >= 2 and len(done2) >= 2 and len(done1) + len(done2) >= 8, (done1, done2, late, errors)
        lb = _client(cluster.url)
        lost = {tag: m for tag in done1 + done2 if (m := _missing(lb, "nolock/gc", tag))}
        assert lost == {}
        assert errors == []
        driver = S3Driver.from_parameters(cluster.replicas[0].config["storage"]["s3"])
        try:
            left = [i.path for i in driver.walk(LOCK_ROOT) if not i.is_dir]
        except PathNotFound:
            left = []
        assert left == []  # every hold was released
