"""Garbage collection: what it deletes, what it keeps, and that pushes running during it survive."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from server.helpers import Client, ServerThread, push_blob, push_image, random_blob, sha
from strata.server.gc import GCLock, collect
from strata.server.storage.filesystem import FilesystemDriver
from strata.server.storage.registry import Registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _gc(root: Path, **kw: object) -> object:
    driver = FilesystemDriver(str(root))
    return collect(Registry(driver), GCLock(driver), **kw)  # type: ignore[arg-type]


def _fs(root: Path) -> dict[str, object]:
    return {"storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}}}


def _manifest_blobs(body: bytes) -> list[str]:
    doc = json.loads(body)
    return [doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])]


def _pullable(c: Client, repo: str, ref: str) -> bool:
    r = c.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
    if r.status != 200:
        return False
    return all(c.request("HEAD", f"/v2/{repo}/blobs/{d}").status == 200 for d in _manifest_blobs(r.body))


def test_gc_deletes_orphans_keeps_referenced(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    with ServerThread(_fs(root)) as reg:
        kept_d, kept = push_image(reg, "app", "v1")
        orphan = push_blob(reg, "app", random_blob(100))
        untagged_d, untagged = push_image(reg, "app", "v2")
        reg.request("DELETE", "/v2/app/manifests/v2")  # untag: manifest stays
        time.sleep(0.1)
        dry = _gc(root, dry_run=True, grace_period=0)
        assert [str(d) for d in dry.deleted_blobs] == [orphan]  # type: ignore[attr-defined]
        assert reg.request("HEAD", f"/v2/app/blobs/{orphan}").status == 200
        _gc(root, grace_period=0)
        assert reg.request("HEAD", f"/v2/app/blobs/{orphan}").status == 404
        assert _pullable(reg, "app", "v1") and _pullable(reg, "app", untagged_d)
        report = _gc(root, grace_period=0, delete_untagged=True)
        assert [(n, str(d)) for n, d in report.deleted_manifests] == [("app", untagged_d)]  # type: ignore[attr-defined]
        assert reg.get(f"/v2/app/manifests/{untagged_d}").status == 404
        shared = set(_manifest_blobs(kept))
        for d in _manifest_blobs(untagged):
            if d not in shared:
                assert reg.request("HEAD", f"/v2/app/blobs/{d}").status == 404
        assert _pullable(reg, "app", "v1")
        assert kept_d


def test_gc_keeps_children_of_tagged_index(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    with ServerThread(_fs(root)) as reg:
        children = []
        for arch in ("amd64", "arm64"):
            d, body = push_image(reg, "multi", f"tmp-{arch}")
            reg.request("DELETE", f"/v2/multi/manifests/tmp-{arch}")  # children now untagged
            time.sleep(0.1)
            children.append({"mediaType": OCI_MANIFEST, "digest": d, "size": len(body),
                             "platform": {"os": "linux", "architecture": arch}})
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
        assert reg.request("PUT", "/v2/multi/manifests/latest", body=index,
                           headers={"Content-Type": OCI_INDEX}).status == 201
        report = _gc(root, grace_period=0, delete_untagged=True)
        assert report.deleted_manifests == []  # type: ignore[attr-defined]
        for child in children:
            assert _pullable(reg, "multi", str(child["digest"]))


def test_grace_period_protects_blobs_of_a_manifest_not_yet_pushed(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    with ServerThread(_fs(root)) as reg:
        cfg = json.dumps({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = random_blob(5000)
        cd, ld = push_blob(reg, "late", cfg), push_blob(reg, "late", layer)
        report = _gc(root, grace_period=60)
        assert report.deleted_blobs == []  # type: ignore[attr-defined]
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(layer)}]}).encode()
        assert reg.request("PUT", "/v2/late/manifests/t", body=manifest, headers={"Content-Type": OCI_MANIFEST}).status == 201
        assert _pullable(reg, "late", "t")


def test_upload_in_flight_survives_gc(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    with ServerThread(_fs(root)) as reg:
        push_image(reg, "fly", "base")
        data = random_blob(300_000)
        loc = reg.request("POST", "/v2/fly/blobs/uploads/").header("Location")
        assert loc
        assert reg.request("PATCH", loc, body=data[:100_000]).status == 202
        _gc(root, grace_period=0, delete_untagged=True)
        assert reg.request("PATCH", loc, body=data[100_000:]).status == 202
        assert reg.request("PUT", f"{loc}?digest={sha(data)}").status == 201
        assert reg.get(f"/v2/fly/blobs/{sha(data)}").body == data


def test_pushes_during_repeated_gc_are_never_broken(tmp_path: Path) -> None:
    """Clients push images (blobs, a pause, then the manifest) while GC runs in a loop."""
    root = tmp_path / "reg"
    stop = threading.Event()
    passes = [0]
    errors: list[BaseException] = []

    def gc_loop() -> None:
        try:
            while not stop.is_set():
                _gc(root, grace_period=2, delete_untagged=True)
                passes[0] += 1
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    with ServerThread(_fs(root)) as reg:
        t = threading.Thread(target=gc_loop)
        t.start()
        pushed = []
        try:
            # 6 s of pushes and at least 2 GC passes among them (a loaded machine may pass fewer in 6 s)
            began = time.monotonic()
            i = 0
            while time.monotonic() < began + 6 or passes[0] < 2:
                assert time.monotonic() < began + 120 and not errors, (passes, errors)
                layers = [random_blob(20_000), random_blob(1000)]
                pushed.append(push_image(reg, "busy", f"t{i}", layers=layers))
                # an untagged manifest + an orphan blob: garbage the GC must find
                _, _b = push_image(reg, "busy", "scratch")
                reg.request("DELETE", "/v2/busy/manifests/scratch")
                push_blob(reg, "busy", random_blob(100))
                time.sleep(0.05)
                i += 1
        finally:
            stop.set()
            t.join(30)
        assert not errors, errors
        assert passes[0] >= 2
        for i, (_d, _) in enumerate(pushed):
            assert _pullable(reg, "busy", f"t{i}"), f"t{i} broken"
        time.sleep(2.1)
        report = _gc(root, grace_period=2, delete_untagged=True)
        assert all(_pullable(reg, "busy", f"t{i}") for i in range(len(pushed)))
        assert report.deleted_blobs or passes[0]  # type: ignore[attr-defined]


def test_every_pass_records_its_summary_for_the_ui(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from strata.server import gc

    root = tmp_path / "reg"
    record = root / "docker/registry/v2/strata/gc/last.json"
    written: list[str] = []  # the record as each pass left it: the next pass, 0.3 s on, rewrites it (0
    recorder = gc._record  # deleted), and a poll of the file late on a loaded machine would miss the one

    def kept(driver: Any, report: Any) -> None:
        recorder(driver, report)
        written.append(record.read_text())

    monkeypatch.setattr(gc, "_record", kept)
    with ServerThread({**_fs(root), "gc": {"interval": "0.3s", "graceperiod": "0s"}}) as reg:
        push_blob(reg, "app", random_blob(1234))  # alone: a grace period of 0 would race a whole image's push
        deadline = time.time() + 60
        doc: dict[str, Any] = {}
        while time.time() < deadline:  # the online schedule's pass that deleted it
            if any((doc := json.loads(text))["deletedBlobs"] == 1 for text in list(written)):
                break
            time.sleep(0.1)
        assert doc["deletedBlobs"] == 1 and doc["freedBytes"] == 1234 and doc["dryRun"] is False
        assert doc["deletedManifests"] == 0 and doc["duration"] >= 0 and abs(doc["started"] - time.time()) < 30
        assert doc["time"].endswith("Z")
    assert [p.name for p in record.parent.iterdir()] == ["last.json"]  # written whole: no temporary left
    before = time.time()
    report = _gc(root, dry_run=True, grace_period=0)
    doc = json.loads(record.read_text())
    assert doc["dryRun"] is True and doc["deletedBlobs"] == 0 and doc["started"] >= before - 0.01
    assert doc["started"] == report.started  # type: ignore[attr-defined]


@pytest.mark.peers
def test_a_pass_over_s3_is_recorded_and_shown_by_the_ui() -> None:
    from server.s3.radosgw import session_radosgw
    from strata.server.gc import last_run
    from strata.server.storage.s3 import S3Driver

    rgw = session_radosgw()
    params: dict[str, Any] = rgw.s3_params(rgw.new_bucket(), rootdirectory="/gcui")
    raw = {"storage": {"s3": params, "redirect": {"disable": True}}, "ui": {"enabled": True, "path": "/ui"}}
    with ServerThread(raw) as reg:
        driver = S3Driver.from_parameters(params)
        assert last_run(driver) is None
        assert "Last garbage collection: never" in reg.get("/ui/").body.decode()
        push_blob(reg, "app", random_blob(2500))
        time.sleep(1.1)
        report = collect(Registry(driver), GCLock(driver), grace_period=0)
        run = last_run(driver)
        assert run is not None and run.started == report.started and run.deleted_blobs == 1
        assert run.freed_bytes == 2500 and not run.dry_run
        assert "deleted 1 blob, 0 manifests, 0 uploads; freed 2.5kB" in reg.get("/ui/").body.decode()
