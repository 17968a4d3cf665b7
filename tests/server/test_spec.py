"""The OCI Distribution Spec API against a real strata registry on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.helpers import ServerThread, push_blob, push_image, random_blob, sha

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


@pytest.fixture(params=["filesystem", "inmemory"])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerThread]:
    raw: dict[str, object] = {"storage": {"inmemory": {}, "delete": {"enabled": True}}}
    if request.param == "filesystem":
        raw = {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "reg")}, "delete": {"enabled": True}}}
    with ServerThread(raw) as s:
        yield s


def test_base_endpoint(reg: ServerThread) -> None:
    r = reg.get("/v2/")
    assert r.status == 200
    assert r.header("Docker-Distribution-API-Version") == "registry/2.0"
    assert reg.get("/v2").status == 200


def test_monolithic_and_post_put_upload(reg: ServerThread) -> None:
    data = random_blob(5000)
    d = sha(data)
    r = reg.request("POST", "/v2/a/b/blobs/uploads/")
    assert r.status == 202
    loc = r.header("Location")
    assert loc and r.header("Docker-Upload-UUID") and r.header("Range") == "0-0"
    r = reg.request("PUT", f"{loc}?digest={d}", body=data, headers={"Content-Type": "application/octet-stream"})
    assert r.status == 201, r.body
    assert r.header("Docker-Content-Digest") == d
    assert r.header("Location") == f"/v2/a/b/blobs/{d}"
    r = reg.get(f"/v2/a/b/blobs/{d}")
    assert r.status == 200 and r.body == data and r.header("Docker-Content-Digest") == d
    r = reg.request("HEAD", f"/v2/a/b/blobs/{d}")
    assert r.status == 200 and r.header("Content-Length") == "5000" and r.body == b""


def test_blob_range_requests(reg: ServerThread) -> None:
    data = random_blob(10000)
    d = push_blob(reg, "r", data)
    r = reg.get(f"/v2/r/blobs/{d}", headers={"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == data[100:200]
    assert r.header("Content-Range") == "bytes 100-199/10000"
    r = reg.get(f"/v2/r/blobs/{d}", headers={"Range": "bytes=9990-"})
    assert r.status == 206 and r.body == data[9990:]


def test_blob_unknown_and_not_linked_in_other_repo(reg: ServerThread) -> None:
    d = push_blob(reg, "one", b"payload")
    r = reg.get(f"/v2/two/blobs/{d}")
    assert r.status == 404 and r.codes == ["BLOB_UNKNOWN"]
    r = reg.request("HEAD", f"/v2/two/blobs/{d}")
    assert r.status == 404


def test_chunked_upload_with_out_of_order_chunk(reg: ServerThread) -> None:
    data = random_blob(300_000)
    loc = reg.request("POST", "/v2/c/blobs/uploads/").header("Location")
    assert loc
    parts = [data[:100_000], data[100_000:200_000], data[200_000:]]
    r = reg.request("PATCH", loc, body=parts[0], headers={"Content-Range": "0-99999", "Content-Type": "application/octet-stream"})
    assert r.status == 202 and r.header("Range") == "0-99999"
    loc = r.header("Location")
    assert loc
    # skipping a chunk is refused with 416 and the current range
    r = reg.request("PATCH", loc, body=parts[2], headers={"Content-Range": "200000-299999"})
    assert r.status == 416 and r.header("Range") == "0-99999"
    r = reg.request("PATCH", loc, body=parts[1], headers={"Content-Range": "100000-199999"})
    assert r.status == 202 and r.header("Range") == "0-199999"
    r = reg.get(loc)
    assert r.status == 204 and r.header("Range") == "0-199999" and r.header("Location")
    r = reg.request("PUT", f"{loc}?digest={sha(data)}", body=parts[2], headers={"Content-Range": "200000-299999"})
    assert r.status == 201, r.body
    assert reg.get(f"/v2/c/blobs/{sha(data)}").body == data


def test_streamed_patch_without_content_range(reg: ServerThread) -> None:
    data = random_blob(200_000)
    loc = reg.request("POST", "/v2/s/blobs/uploads/").header("Location")
    assert loc
    r = reg.request("PATCH", loc, body=data[:50_000])
    assert r.status == 202
    r = reg.request("PATCH", loc, body=data[50_000:])
    assert r.status == 202 and r.header("Range") == "0-199999"
    r = reg.request("PUT", f"{loc}?digest={sha(data)}")
    assert r.status == 201


def test_wrong_digest_is_refused_and_nothing_stored(reg: ServerThread) -> None:
    data = b"the real content"
    wrong = sha(b"something else")
    r = reg.request("POST", f"/v2/w/blobs/uploads/?digest={wrong}", body=data)
    assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
    assert reg.request("HEAD", f"/v2/w/blobs/{wrong}").status == 404
    assert reg.request("HEAD", f"/v2/w/blobs/{sha(data)}").status == 404


@pytest.mark.parametrize("bad", ["sha256:zz", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "nocolon", "sha256:" + "A" * 64])
def test_malformed_digests_are_400(reg: ServerThread, bad: str) -> None:
    assert reg.get(f"/v2/x/blobs/{bad}").status in (400, 404)
    r = reg.get(f"/v2/x/blobs/{bad}")
    if ":" in bad:
        assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
    r = reg.request("POST", f"/v2/x/blobs/uploads/?digest={bad}", body=b"x")
    assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
    r = reg.get(f"/v2/x/referrers/{bad}")
    assert r.status == 400


def test_cancel_upload(reg: ServerThread) -> None:
    loc = reg.request("POST", "/v2/k/blobs/uploads/").header("Location")
    assert loc
    assert reg.request("DELETE", loc).status == 204
    r = reg.request("PATCH", loc, body=b"x")
    assert r.status == 404 and r.codes == ["BLOB_UPLOAD_UNKNOWN"]
    r = reg.get("/v2/k/blobs/uploads/not-a-uuid")
    assert r.status == 404 and r.codes == ["BLOB_UPLOAD_UNKNOWN"]


def test_cross_repo_mount_and_fallback(reg: ServerThread) -> None:
    d = push_blob(reg, "src/repo", b"shared layer")
    r = reg.request("POST", f"/v2/dst/repo/blobs/uploads/?mount={d}&from=src/repo")
    assert r.status == 201 and r.header("Docker-Content-Digest") == d
    assert reg.get(f"/v2/dst/repo/blobs/{d}").body == b"shared layer"
    missing = sha(b"not there")
    r = reg.request("POST", f"/v2/dst/repo/blobs/uploads/?mount={missing}&from=src/repo")
    assert r.status == 202 and r.header("Location")


def test_manifest_push_pull_by_tag_and_digest(reg: ServerThread) -> None:
    d, body = push_image(reg, "img/app", "v1")
    for ref in ("v1", d):
        r = reg.get(f"/v2/img/app/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status == 200 and r.body == body
        assert r.header("Docker-Content-Digest") == d
        assert r.header("Content-Type") == OCI_MANIFEST
        h = reg.request("HEAD", f"/v2/img/app/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert h.status == 200 and h.header("Content-Length") == str(len(body)) and h.body == b""
    r = reg.get("/v2/img/app/manifests/nope")
    assert r.status == 404 and r.codes == ["MANIFEST_UNKNOWN"]


def test_docker_manifest_and_accept_negotiation(reg: ServerThread) -> None:
    _d, _body = push_image(reg, "dock", "latest", media_type=DOCKER_MANIFEST)
    r = reg.get("/v2/dock/manifests/latest", headers={"Accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"})
    assert r.status == 200 and r.header("Content-Type") == DOCKER_MANIFEST
    r = reg.get("/v2/dock/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert r.status == 404 and r.codes == ["MANIFEST_UNKNOWN"]


def test_index_children_checked_and_platform_fallback(reg: ServerThread) -> None:
    child, body = push_image(reg, "multi", "amd64-only")
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": len(body),
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    }
    ib = json.dumps(index).encode()
    r = reg.request("PUT", "/v2/multi/manifests/latest", body=ib, headers={"Content-Type": OCI_INDEX})
    assert r.status == 201
    r = reg.get("/v2/multi/manifests/latest", headers={"Accept": OCI_INDEX})
    assert r.body == ib
    r = reg.get("/v2/multi/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert r.status == 200 and r.header("Docker-Content-Digest") == child
    missing = dict(index, manifests=[dict(index["manifests"][0], digest=sha(b"nope"))])  # type: ignore[call-overload]
    r = reg.request("PUT", "/v2/multi/manifests/bad", body=json.dumps(missing).encode(), headers={"Content-Type": OCI_INDEX})
    assert r.status == 400 and r.codes == ["MANIFEST_BLOB_UNKNOWN"]


def test_manifest_with_missing_blobs_is_refused(reg: ServerThread) -> None:
    cfg = push_blob(reg, "m", b"{}")
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(b"a"), "size": 1},
                           {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(b"b"), "size": 1}]}
    r = reg.request("PUT", "/v2/m/manifests/t", body=json.dumps(manifest).encode(), headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400
    assert r.codes == ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"]
    assert {e["detail"]["digest"] for e in r.json()["errors"]} == {sha(b"a"), sha(b"b")}


def test_manifest_put_by_wrong_digest(reg: ServerThread) -> None:
    cfg = push_blob(reg, "m2", b"{}")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2}, "layers": []}).encode()
    r = reg.request("PUT", f"/v2/m2/manifests/{sha(b'other')}", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
    r = reg.request("PUT", f"/v2/m2/manifests/{sha(body)}", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201


@pytest.mark.parametrize(
    "body,ctype",
    [
        (b"not json", OCI_MANIFEST),
        (b"[]", OCI_MANIFEST),
        (json.dumps({"schemaVersion": 1, "name": "x", "tag": "t", "fsLayers": []}).encode(),
         "application/vnd.docker.distribution.manifest.v1+prettyjws"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": "bad", "size": 1}}).encode(), OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": {}}).encode(), OCI_MANIFEST),
    ],
)
def test_invalid_manifests(reg: ServerThread, body: bytes, ctype: str) -> None:
    r = reg.request("PUT", "/v2/bad/manifests/t", body=body, headers={"Content-Type": ctype})
    assert r.status == 400 and r.codes == ["MANIFEST_INVALID"], r.body


def test_schema1_refused_with_clear_message(reg: ServerThread) -> None:
    body = json.dumps({"schemaVersion": 1, "name": "x", "tag": "t", "fsLayers": []}).encode()
    r = reg.request("PUT", "/v2/s1/manifests/t", body=body,
                    headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"})
    assert "schema 1" in r.json()["errors"][0]["message"]


def test_oversized_manifest_is_413(reg: ServerThread) -> None:
    body = b'{"schemaVersion": 2, "pad": "' + b"x" * (4 << 20) + b'"}'
    r = reg.request("PUT", "/v2/big/manifests/t", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 413 and r.codes == ["SIZE_INVALID"]


def test_delete_by_tag_only_untags(reg: ServerThread) -> None:
    d, body = push_image(reg, "del", "one")
    reg.request("PUT", "/v2/del/manifests/two", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert reg.request("DELETE", "/v2/del/manifests/one").status == 202
    assert reg.get("/v2/del/manifests/one").status == 404
    assert reg.get(f"/v2/del/manifests/{d}").status == 200
    assert reg.get("/v2/del/tags/list").json()["tags"] == ["two"]
    assert reg.request("DELETE", f"/v2/del/manifests/{d}").status == 202
    assert reg.get(f"/v2/del/manifests/{d}").status == 404
    assert reg.get("/v2/del/tags/list").json()["tags"] == []
    r = reg.request("DELETE", f"/v2/del/manifests/{d}")
    assert r.status == 404 and r.codes == ["MANIFEST_UNKNOWN"]


def test_blob_delete(reg: ServerThread) -> None:
    d = push_blob(reg, "bd", b"bye")
    assert reg.request("DELETE", f"/v2/bd/blobs/{d}").status == 202
    assert reg.request("HEAD", f"/v2/bd/blobs/{d}").status == 404
    assert reg.request("DELETE", f"/v2/bd/blobs/{d}").status == 404


def test_delete_disabled(tmp_path: Path) -> None:
    raw = {"storage": {"filesystem": {"rootdirectory": str(tmp_path)}, "delete": {"enabled": False}}}
    with ServerThread(raw) as reg:
        push_image(reg, "nd", "t")
        r = reg.request("DELETE", "/v2/nd/manifests/t")
        assert r.status == 405 and r.codes == ["UNSUPPORTED"]


def test_tags_pagination(reg: ServerThread) -> None:
    _, body = push_image(reg, "pg", "a")
    for t in ("c", "b", "e", "d"):
        reg.request("PUT", f"/v2/pg/manifests/{t}", body=body, headers={"Content-Type": OCI_MANIFEST})
    r = reg.get("/v2/pg/tags/list")
    assert r.json() == {"name": "pg", "tags": ["a", "b", "c", "d", "e"]}
    r = reg.get("/v2/pg/tags/list?n=2")
    assert r.json()["tags"] == ["a", "b"]
    assert r.header("Link") == '</v2/pg/tags/list?last=b&n=2>; rel="next"'
    r = reg.get("/v2/pg/tags/list?n=2&last=b")
    assert r.json()["tags"] == ["c", "d"]
    r = reg.get("/v2/pg/tags/list?n=2&last=d")
    assert r.json()["tags"] == ["e"] and r.header("Link") is None
    assert reg.get("/v2/pg/tags/list?n=0").json()["tags"] == []
    assert reg.get("/v2/pg/tags/list?n=x").status == 400
    r = reg.get("/v2/nosuch/tags/list")
    assert r.status == 404 and r.codes == ["NAME_UNKNOWN"]


def test_catalog_pagination(reg: ServerThread) -> None:
    for name in ("zeta", "alpha/one", "alpha/two", "beta"):
        push_image(reg, name, "t")
    assert reg.get("/v2/_catalog").json() == {"repositories": ["alpha/one", "alpha/two", "beta", "zeta"]}
    r = reg.get("/v2/_catalog?n=3")
    assert r.json()["repositories"] == ["alpha/one", "alpha/two", "beta"]
    assert r.header("Link") == '</v2/_catalog?last=beta&n=3>; rel="next"'
    assert reg.get("/v2/_catalog?n=3&last=beta").json()["repositories"] == ["zeta"]


def test_referrers_api(reg: ServerThread) -> None:
    subject, sbody = push_image(reg, "ref", "v1")
    empty = push_blob(reg, "ref", b"{}")

    def artifact(atype: str, ann: str) -> str:
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": atype,
             "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
             "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(sbody)},
             "annotations": {"note": ann}}
        b = json.dumps(m).encode()
        r = reg.request("PUT", f"/v2/ref/manifests/{sha(b)}", body=b, headers={"Content-Type": OCI_MANIFEST})
        assert r.status == 201 and r.header("OCI-Subject") == subject
        return sha(b)

    sig = artifact("application/vnd.example.signature", "s")
    sbom = artifact("application/vnd.example.sbom", "b")
    r = reg.get(f"/v2/ref/referrers/{subject}")
    assert r.status == 200 and r.header("Content-Type") == OCI_INDEX
    idx = r.json()
    assert idx["mediaType"] == OCI_INDEX
    assert {m["digest"] for m in idx["manifests"]} == {sig, sbom}
    r = reg.get(f"/v2/ref/referrers/{subject}?artifactType=application/vnd.example.sbom")
    assert [m["digest"] for m in r.json()["manifests"]] == [sbom]
    assert r.json()["manifests"][0]["annotations"] == {"note": "b"}
    assert r.header("OCI-Filters-Applied") == "artifactType"
    r = reg.get(f"/v2/ref/referrers/{sha(b'unknown subject')}")
    assert r.status == 200 and r.json()["manifests"] == []
    reg.request("DELETE", f"/v2/ref/manifests/{sig}")
    assert [m["digest"] for m in reg.get(f"/v2/ref/referrers/{subject}").json()["manifests"]] == [sbom]


@pytest.mark.parametrize("name", ["UPPER", "a/../b", "..", "a//b", "-lead", "a/%2e%2e/b", "_catalog2/x", "x" * 256])
def test_invalid_names(reg: ServerThread, name: str) -> None:
    r = reg.get(f"/v2/{name}/tags/list")
    assert r.status in (400, 404)
    if r.status == 400:
        assert r.codes == ["NAME_INVALID"]
    r = reg.request("POST", f"/v2/{name}/blobs/uploads/")
    assert r.status in (400, 404)


def test_path_traversal_never_escapes_storage(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    with ServerThread({"storage": {"filesystem": {"rootdirectory": str(root)}}}) as reg:
        for name in ("..%2F..%2Fetc", "a/%2e%2e/%2e%2e/x", "%2e%2e", "a/.%2e/b"):
            r = reg.request("POST", f"/v2/{name}/blobs/uploads/?digest={sha(b'x')}", body=b"x")
            assert r.status in (400, 404)
    escaped = [p for p in tmp_path.rglob("*") if root not in p.parents and p != root]
    assert escaped == []


def test_search_v1(reg: ServerThread) -> None:
    for name in ("alice/web", "bob/webapp", "bob/db"):
        push_image(reg, name, "t")
    r = reg.get("/v1/search?q=web&n=25")
    body = r.json()
    assert body["num_results"] == 2 and body["query"] == "web" and body["page"] == 1
    assert [x["name"] for x in body["results"]] == ["alice/web", "bob/webapp"]
    assert set(body["results"][0]) == {"name", "description", "star_count", "is_official", "is_automated"}
    r = reg.get("/v1/search?q=b&n=1&page=2")
    assert r.json()["num_pages"] == 3 and len(r.json()["results"]) == 1


def test_metrics_and_health(reg: ServerThread) -> None:
    reg.get("/v2/")
    reg.get("/v2/nosuch/manifests/x")
    assert reg.get("/metrics").status == 404  # metrics live on the debug server only
    m = reg.debug.get("/metrics")
    assert m.status == 200
    text = m.body.decode()
    assert 'strata_registry_http_requests_total{route="manifest",method="GET",code="404"} 1' in text
    assert reg.get("/debug/health").status == 200


def test_unsupported_method(reg: ServerThread) -> None:
    r = reg.request("POST", "/v2/x/tags/list")
    assert r.status == 405 and r.codes == ["UNSUPPORTED"]


def test_concurrent_pushes_of_same_blob_and_tag(tmp_path: Path) -> None:
    import threading

    with ServerThread({"storage": {"filesystem": {"rootdirectory": str(tmp_path)}}}) as reg:
        data = random_blob(2 << 20)
        statuses: list[int] = []

        def push_same_blob() -> None:
            loc = reg.request("POST", "/v2/race/blobs/uploads/").header("Location")
            assert loc
            for i in range(0, len(data), 512 << 10):
                reg.request("PATCH", loc, body=data[i : i + (512 << 10)])
            statuses.append(reg.request("PUT", f"{loc}?digest={sha(data)}").status)

        threads = [threading.Thread(target=push_same_blob) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [201] * 4
        assert reg.get(f"/v2/race/blobs/{sha(data)}").body == data
        results: list[tuple[str, bytes]] = []

        def push_tag() -> None:
            results.append(push_image(reg, "race", "same"))

        threads = [threading.Thread(target=push_tag) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 4
        r = reg.get("/v2/race/manifests/same", headers={"Accept": OCI_MANIFEST})
        assert (r.header("Docker-Content-Digest"), r.body) in results
        assert reg.get("/v2/race/tags/list").json()["tags"] == ["same"]


def test_online_gc_schedule(tmp_path: Path) -> None:
    import time

    storage = {"filesystem": {"rootdirectory": str(tmp_path)}}
    with ServerThread({"storage": storage}) as reg:
        # pushed before the GC runs: with no grace period a pass between a blob and its manifest (a push
        # slower than the 300 ms interval, as on a loaded machine) deletes the blob and fails the push
        _, body = push_image(reg, "online", "v1")
    with ServerThread({"storage": storage, "gc": {"interval": "300ms", "graceperiod": "0s"}}) as reg:
        orphan = push_blob(reg, "online", b"orphan blob")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and reg.request("HEAD", f"/v2/online/blobs/{orphan}").status == 200:
            time.sleep(0.1)
        assert reg.request("HEAD", f"/v2/online/blobs/{orphan}").status == 404
        assert reg.get("/v2/online/manifests/v1", headers={"Accept": OCI_MANIFEST}).body == body


def _nested(depth: int) -> object:
    doc: object = "leaf"
    for i in range(depth):
        doc = [doc] if i % 2 else {"k": doc}
    return doc


@pytest.mark.parametrize("depth", [129, 5000, 200_000])
def test_deeply_nested_manifest_is_manifest_invalid(reg: ServerThread, depth: int) -> None:
    """distribution answers 400 MANIFEST_INVALID; a RecursionError must never become a 500."""
    cfg = push_blob(reg, "deep", b"{}")
    head = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg,
                                  "size": 2}, "layers": []})[:-1]
    body = (head + ', "annotations": {"x": ' + "[" * depth + "]" * depth + "}}").encode()
    r = reg.request("PUT", "/v2/deep/manifests/t", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.codes == ["MANIFEST_INVALID"], (r.status, r.body[:300])
    assert "nested" in r.json()["errors"][0]["message"]
    r = reg.request("PUT", "/v2/deep/manifests/t", body=b"[" * depth + b"]" * depth,
                    headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.codes == ["MANIFEST_INVALID"]
    assert reg.get("/v2/deep/manifests/t").status == 404


def test_moderately_nested_manifest_is_accepted(reg: ServerThread) -> None:
    """Brackets inside strings do not count, and ordinary nesting passes."""
    cfg = push_blob(reg, "nest", b"{}")
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2},
           "layers": [], "annotations": {"brackets": "[" * 5000 + '\\"{' * 500}, "x-extra": _nested(100)}
    body = json.dumps(doc).encode()
    r = reg.request("PUT", "/v2/nest/manifests/t", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201, r.body
    r = reg.get("/v2/nest/manifests/t", headers={"Accept": OCI_MANIFEST})
    assert r.status == 200 and r.body == body and r.header("Content-Type") == OCI_MANIFEST
