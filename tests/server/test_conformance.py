"""The OCI distribution-spec v1.1 conformance flows, step by step, with every status and header the
spec requires (MUST) checked exactly: pull, push (streamed, monolithic, single POST, chunked with
out-of-order and retried chunks, mount), content discovery (tags, referrers) and management."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.helpers import Resp, ServerThread, random_blob, sha

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
EMPTY_JSON = "application/vnd.oci.empty.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
OCTET = {"Content-Type": "application/octet-stream"}
NAME = "conformance/repo"
CROSS = "conformance/cross"


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[ServerThread]:
    raw = {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "reg")}, "delete": {"enabled": True}}}
    with ServerThread(raw) as s:
        yield s


def _errors_shape(r: Resp) -> None:
    body = r.json()
    assert set(body) == {"errors"} and body["errors"]
    for e in body["errors"]:
        assert {"code", "message"} <= set(e) <= {"code", "message", "detail"}
        assert e["code"] == e["code"].upper()


def _put_blob(reg: ServerThread, name: str, data: bytes) -> str:
    loc = reg.request("POST", f"/v2/{name}/blobs/uploads/").header("Location")
    assert loc
    r = reg.request("PUT", f"{loc}?digest={sha(data)}", body=data, headers=OCTET)
    assert r.status == 201, r.body
    return sha(data)


def _manifest(config: bytes, config_type: str, layers: list[bytes], **extra: object) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": LAYER, "digest": sha(b), "size": len(b)} for b in layers],
        **extra,
    }
    return json.dumps(doc).encode()


def _put_manifest(reg: ServerThread, ref: str, body: bytes, ctype: str = OCI_MANIFEST) -> Resp:
    r = reg.request("PUT", f"/v2/{NAME}/manifests/{ref}", body=body, headers={"Content-Type": ctype})
    assert r.status == 201, r.body
    assert r.header("Location") == f"/v2/{NAME}/manifests/{sha(body)}"
    assert r.header("Docker-Content-Digest") == sha(body)
    return r


def test_pull_of_missing_content(reg: ServerThread) -> None:
    dummy = sha(b"nothing here")
    for method in ("GET", "HEAD"):
        r = reg.request(method, f"/v2/{NAME}/manifests/{dummy}")
        assert r.status == 404
        r = reg.request(method, f"/v2/{NAME}/manifests/nonexistent-tag")
        assert r.status == 404
        r = reg.request(method, f"/v2/{NAME}/blobs/{dummy}")
        assert r.status == 404
        if method == "GET":
            _errors_shape(r)
            assert r.codes == ["BLOB_UNKNOWN"]
        else:
            assert r.body == b""


def test_streamed_then_put_with_empty_body(reg: ServerThread) -> None:
    blob = random_blob(4096)
    r = reg.request("POST", f"/v2/{NAME}/blobs/uploads/")
    assert r.status == 202 and r.header("Location")
    r = reg.request("PATCH", str(r.header("Location")), body=blob, headers=OCTET)
    assert r.status == 202 and r.header("Location") and r.header("Range") == "0-4095"
    r = reg.request("PUT", f"{r.header('Location')}?digest={sha(blob)}", headers={**OCTET, "Content-Length": "0"})
    assert r.status == 201 and r.header("Location") == f"/v2/{NAME}/blobs/{sha(blob)}"
    assert r.header("Docker-Content-Digest") == sha(blob)


def test_monolithic_single_post_and_post_put(reg: ServerThread) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    r = reg.request("POST", f"/v2/{NAME}/blobs/uploads/?digest={sha(config)}", body=config, headers=OCTET)
    assert r.status == 201 and r.header("Location") == f"/v2/{NAME}/blobs/{sha(config)}"
    g = reg.get(str(r.header("Location")))
    assert g.status == 200 and g.body == config and g.header("Docker-Content-Digest") == sha(config)
    layer = random_blob(10_000)
    r = reg.request("POST", f"/v2/{NAME}/blobs/uploads/")
    assert r.status == 202
    r = reg.request("PUT", f"{r.header('Location')}?digest={sha(layer)}", body=layer, headers=OCTET)
    assert r.status == 201 and r.header("Location")
    assert reg.get(f"/v2/{NAME}/blobs/{sha(layer)}").status == 200


def test_chunked_upload_flow(reg: ServerThread) -> None:
    blob = random_blob(2000)
    c1, c2 = blob[:1000], blob[1000:]
    # out of order: the second chunk first
    r = reg.request("POST", f"/v2/{NAME}/blobs/uploads/", headers={"Content-Length": "0"})
    assert r.status == 202 and r.header("Location")
    r = reg.request("PATCH", str(r.header("Location")), body=c2, headers={**OCTET, "Content-Range": "1000-1999"})
    assert r.status == 416
    _errors_shape(r)
    # in order
    first = reg.request("POST", f"/v2/{NAME}/blobs/uploads/", headers={"Content-Length": "0"})
    r = reg.request("PATCH", str(first.header("Location")), body=c1, headers={**OCTET, "Content-Range": "0-999"})
    assert r.status == 202 and r.header("Range") == "0-999" and r.header("Location")
    # the same chunk again (a client retrying on the session's first URL)
    r = reg.request("PATCH", str(first.header("Location")), body=c1, headers={**OCTET, "Content-Range": "0-999"})
    assert r.status == 416
    status = reg.get(str(first.header("Location")))
    assert status.status == 204 and status.header("Location") and status.header("Range") == "0-999"
    assert status.header("Docker-Upload-UUID")
    r = reg.request("PATCH", str(status.header("Location")), body=c2, headers={**OCTET, "Content-Range": "1000-1999"})
    assert r.status == 202 and r.header("Location") and r.header("Range") == "0-1999"
    r = reg.request("PUT", f"{r.header('Location')}?digest={sha(blob)}", headers={**OCTET, "Content-Length": "0"})
    assert r.status == 201 and r.header("Location")
    assert reg.get(f"/v2/{NAME}/blobs/{sha(blob)}").body == blob


def test_cross_repository_mount(reg: ServerThread) -> None:
    blob = random_blob(512)
    d = _put_blob(reg, NAME, blob)
    r = reg.request("POST", f"/v2/{CROSS}/blobs/uploads/?mount={sha(b'dummy')}")
    assert r.status == 202 and str(r.header("Location")).startswith(f"/v2/{CROSS}/blobs/uploads/")
    r = reg.request("POST", f"/v2/{CROSS}/blobs/uploads/?mount={d}&from={NAME}")
    assert r.status == 201 and r.header("Location") == f"/v2/{CROSS}/blobs/{d}"
    assert reg.get(str(r.header("Location"))).status == 200
    # no automatic content discovery: without `from` the client gets an upload session
    r = reg.request("POST", f"/v2/{CROSS}/blobs/uploads/?mount={d}")
    assert r.status == 202
    # mount of a blob the source does not have
    r = reg.request("POST", f"/v2/{CROSS}/blobs/uploads/?mount={sha(b'absent')}&from={NAME}")
    assert r.status == 202 and str(r.header("Location")).startswith(f"/v2/{CROSS}/blobs/uploads/")


def test_manifest_upload_and_empty_layers(reg: ServerThread) -> None:
    config, layer = b'{"os":"linux"}', random_blob(300)
    _put_blob(reg, NAME, config)
    _put_blob(reg, NAME, layer)
    body = _manifest(config, OCI_CONFIG, [layer])
    for i in range(4):
        _put_manifest(reg, f"test{i}", body)
    empty = _manifest(config, OCI_CONFIG, [])
    _put_manifest(reg, "emptylayer", empty)
    r = reg.get(f"/v2/{NAME}/manifests/{sha(body)}", headers={"Accept": OCI_MANIFEST})
    assert r.status == 200 and r.body == body and r.header("Content-Type") == OCI_MANIFEST
    h = reg.request("HEAD", f"/v2/{NAME}/manifests/test0", headers={"Accept": OCI_MANIFEST})
    assert h.status == 200 and h.body == b"" and h.header("Content-Length") == str(len(body))
    assert h.header("Docker-Content-Digest") == sha(body)


def _referrers(reg: ServerThread, subject: str, query: str = "") -> tuple[Resp, list[dict[str, object]]]:
    r = reg.get(f"/v2/{NAME}/referrers/{subject}{query}")
    assert r.status == 200 and r.header("Content-Type") == OCI_INDEX
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    return r, list(index["manifests"])


def test_referrers_discovery(reg: ServerThread) -> None:
    type_a, type_b = "application/vnd.example.type-a", "application/vnd.example.type-b"
    empty = b"{}"
    assert sha(empty) == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    _put_blob(reg, NAME, empty)
    ref_a, ref_b = random_blob(64), random_blob(64)
    _put_blob(reg, NAME, ref_a)
    config, layer = b'{"os":"linux","n":4}', random_blob(100)
    _put_blob(reg, NAME, config)
    _put_blob(reg, NAME, layer)
    subject_body = _manifest(config, OCI_CONFIG, [layer])
    subject = {"mediaType": OCI_MANIFEST, "digest": sha(subject_body), "size": len(subject_body)}
    missing_body = _manifest(config, OCI_CONFIG, [])  # never pushed
    missing = {"mediaType": OCI_MANIFEST, "digest": sha(missing_body), "size": len(missing_body)}
    expected: dict[str, tuple[str, str]] = {}

    def push_referrer(body: bytes, artifact_type: str, ctype: str = OCI_MANIFEST, subj: str = sha(subject_body)) -> None:
        r = _put_manifest(reg, sha(body), body, ctype)
        assert r.header("OCI-Subject") == subj
        if subj == sha(subject_body):
            expected[sha(body)] = (artifact_type, json.loads(body)["annotations"]["org.example.note"])

    # referrers pushed before the subject exists (the registry must accept them)
    push_referrer(_manifest(ref_a, type_a, [], subject=subject, annotations={"org.example.note": "config-a"}), type_a)
    push_referrer(_manifest(empty, EMPTY_JSON, [ref_a], subject=subject, artifactType=type_a,
                            annotations={"org.example.note": "layer-a"}), type_a)
    index_body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": type_b, "manifests": [],
                             "subject": subject, "annotations": {"org.example.note": "index"}}).encode()
    push_referrer(index_body, type_b, OCI_INDEX)
    _put_manifest(reg, "tagged", subject_body)
    _put_blob(reg, NAME, ref_b)
    push_referrer(_manifest(ref_b, type_b, [], subject=subject, annotations={"org.example.note": "config-b"}), type_b)
    push_referrer(_manifest(empty, EMPTY_JSON, [ref_b], subject=subject, artifactType=type_b,
                            annotations={"org.example.note": "layer-b"}), type_b)
    orphan = _manifest(empty, EMPTY_JSON, [ref_a], subject=missing, artifactType=type_a,
                       annotations={"org.example.note": "orphan"})
    push_referrer(orphan, type_a, subj=sha(missing_body))

    _, none = _referrers(reg, sha(b"unknown"))
    assert none == []
    r, found = _referrers(reg, sha(subject_body))
    assert r.header("OCI-Filters-Applied") is None
    assert len(found) == 5
    for desc in found:
        assert expected[str(desc["digest"])] == (desc["artifactType"], desc["annotations"]["org.example.note"])  # type: ignore[index]
        assert desc["mediaType"] in (OCI_MANIFEST, OCI_INDEX) and isinstance(desc["size"], int)
    r, filtered = _referrers(reg, sha(subject_body), f"?artifactType={type_a}")
    assert r.header("OCI-Filters-Applied") == "artifactType"
    assert sorted(str(d["digest"]) for d in filtered) == sorted(k for k, v in expected.items() if v[0] == type_a)
    _, dangling = _referrers(reg, sha(missing_body))
    assert [d["digest"] for d in dangling] == [sha(orphan)]


def test_tag_listing(reg: ServerThread) -> None:
    config = b'{"os":"linux"}'
    _put_blob(reg, NAME, config)
    body = _manifest(config, OCI_CONFIG, [])
    tags = ["test0", "test1", "test2", "test3", "Zeta", "alpha"]
    for t in tags:
        _put_manifest(reg, t, body)
    r = reg.get(f"/v2/{NAME}/tags/list")
    assert r.status == 200 and r.json() == {"name": NAME, "tags": sorted(tags)}  # lexical: "Zeta" < "alpha"
    r = reg.get(f"/v2/{NAME}/tags/list?n=3")
    assert r.json()["tags"] == sorted(tags)[:3]
    assert r.header("Link") == f'</v2/{NAME}/tags/list?last={sorted(tags)[2]}&n=3>; rel="next"'
    r = reg.get(f"/v2/{NAME}/tags/list?n=3&last={sorted(tags)[2]}")
    assert r.json()["tags"] == sorted(tags)[3:] and r.header("Link") is None
    r = reg.get(f"/v2/{NAME}/tags/list?n=0")
    assert r.status == 200 and r.json()["tags"] == [] and r.header("Link") is None
    r = reg.get(f"/v2/{NAME}/tags/list?last=test1")
    assert r.json()["tags"] == ["test2", "test3"]


def test_content_management(reg: ServerThread) -> None:
    config, layer = b'{"os":"linux","m":1}', random_blob(200)
    _put_blob(reg, NAME, config)
    _put_blob(reg, NAME, layer)
    body = _manifest(config, OCI_CONFIG, [layer])
    _put_manifest(reg, "keep", body)
    _put_manifest(reg, "drop", body)
    r = reg.request("DELETE", f"/v2/{NAME}/manifests/drop")
    assert r.status == 202
    assert reg.get(f"/v2/{NAME}/manifests/drop").status == 404
    assert reg.get(f"/v2/{NAME}/manifests/keep", headers={"Accept": OCI_MANIFEST}).status == 200
    r = reg.request("DELETE", f"/v2/{NAME}/manifests/{sha(body)}")
    assert r.status == 202
    for ref in ("keep", sha(body)):
        r = reg.get(f"/v2/{NAME}/manifests/{ref}")
        assert r.status == 404 and r.codes == ["MANIFEST_UNKNOWN"]
    for blob in (config, layer):
        assert reg.request("DELETE", f"/v2/{NAME}/blobs/{sha(blob)}").status == 202
        r = reg.get(f"/v2/{NAME}/blobs/{sha(blob)}")
        assert r.status == 404 and r.codes == ["BLOB_UNKNOWN"]


def test_error_codes_and_statuses(reg: ServerThread) -> None:
    cases: list[tuple[str, str, bytes | None, dict[str, str], int, str]] = [
        ("GET", f"/v2/{NAME}/blobs/{sha(b'x')}", None, {}, 404, "BLOB_UNKNOWN"),
        ("PATCH", f"/v2/{NAME}/blobs/uploads/{'0' * 32}", b"x", {}, 404, "BLOB_UPLOAD_UNKNOWN"),
        ("POST", f"/v2/{NAME}/blobs/uploads/?digest={sha(b'y')}", b"x", OCTET, 400, "DIGEST_INVALID"),
        ("GET", f"/v2/{NAME}/blobs/sha256:nothex", None, {}, 400, "DIGEST_INVALID"),
        ("PUT", f"/v2/{NAME}/manifests/t", _manifest(b"{}", OCI_CONFIG, []), {"Content-Type": OCI_MANIFEST},
         400, "MANIFEST_BLOB_UNKNOWN"),
        ("PUT", f"/v2/{NAME}/manifests/t", b"{", {"Content-Type": OCI_MANIFEST}, 400, "MANIFEST_INVALID"),
        ("GET", f"/v2/{NAME}/manifests/absent", None, {}, 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/Upper/Case/tags/list", None, {}, 400, "NAME_INVALID"),
        ("GET", "/v2/never/pushed/tags/list", None, {}, 404, "NAME_UNKNOWN"),
        ("PUT", f"/v2/{NAME}/blobs/uploads/", None, {}, 405, "UNSUPPORTED"),
    ]
    for method, path, body, headers, status, code in cases:
        r = reg.request(method, path, body=body, headers=headers)
        assert (r.status, r.codes[0]) == (status, code), (method, path, r.status, r.body)
        _errors_shape(r)
        assert r.header("Content-Type", ) is not None and "json" in str(r.header("Content-Type"))
    # SIZE_INVALID: a chunk shorter than its Content-Range says
    loc = reg.request("POST", f"/v2/{NAME}/blobs/uploads/").header("Location")
    r = reg.request("PATCH", str(loc), body=b"abc", headers={"Content-Range": "0-9"})
    assert r.status == 416 and r.codes == ["SIZE_INVALID"]
    assert reg.get(str(loc)).header("Range") == "0-0"


def test_docker_manifest_list_negotiation(reg: ServerThread) -> None:
    docker_manifest = "application/vnd.docker.distribution.manifest.v2+json"
    docker_list = "application/vnd.docker.distribution.manifest.list.v2+json"
    config, layer = b'{"os":"linux","architecture":"amd64"}', random_blob(100)
    _put_blob(reg, NAME, config)
    _put_blob(reg, NAME, layer)
    child = json.dumps({
        "schemaVersion": 2, "mediaType": docker_manifest,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": sha(layer),
                    "size": len(layer)}],
    }).encode()
    _put_manifest(reg, sha(child), child, docker_manifest)
    mlist = json.dumps({"schemaVersion": 2, "mediaType": docker_list, "manifests": [
        {"mediaType": docker_manifest, "digest": sha(child), "size": len(child),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    _put_manifest(reg, "multi", mlist, docker_list)
    r = reg.get(f"/v2/{NAME}/manifests/multi", headers={"Accept": f"{docker_list}, {docker_manifest}"})
    assert r.status == 200 and r.body == mlist and r.header("Content-Type") == docker_list
    assert r.header("Docker-Content-Digest") == sha(mlist)
    # a client that only takes single manifests gets the linux/amd64 one
    r = reg.get(f"/v2/{NAME}/manifests/multi", headers={"Accept": docker_manifest})
    assert r.status == 200 and r.body == child and r.header("Docker-Content-Digest") == sha(child)
    # by digest the list is never substituted
    r = reg.get(f"/v2/{NAME}/manifests/{sha(mlist)}", headers={"Accept": docker_manifest})
    assert r.status == 200 and r.body == mlist


def test_manifest_pushed_by_sha512_digest(reg: ServerThread) -> None:
    """The registry honours the digest algorithm the client chose: stored, linked and served by sha512."""
    import hashlib

    config, layer = b'{"os":"linux","sha":512}', random_blob(300)
    _put_blob(reg, NAME, config)
    _put_blob(reg, NAME, layer)
    body = _manifest(config, OCI_CONFIG, [layer])
    d512 = "sha512:" + hashlib.sha512(body).hexdigest()
    r = reg.request("PUT", f"/v2/{NAME}/manifests/{d512}", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201, r.body
    assert r.header("Location") == f"/v2/{NAME}/manifests/{d512}"
    assert r.header("Docker-Content-Digest") == d512
    r = reg.get(f"/v2/{NAME}/manifests/{d512}")
    assert r.status == 200 and r.body == body
    assert r.header("Docker-Content-Digest") == d512 and r.header("Content-Type") == OCI_MANIFEST
    r = reg.request("HEAD", f"/v2/{NAME}/manifests/{d512}")
    assert r.status == 200 and r.body == b"" and r.header("Content-Length") == str(len(body))
    assert r.header("Docker-Content-Digest") == d512
    # a wrong sha512 is refused like a wrong sha256
    bad = "sha512:" + hashlib.sha512(body + b" ").hexdigest()
    r = reg.request("PUT", f"/v2/{NAME}/manifests/{bad}", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
    # and it can be deleted by the same digest
    assert reg.request("DELETE", f"/v2/{NAME}/manifests/{d512}").status == 202
    assert reg.get(f"/v2/{NAME}/manifests/{d512}").status == 404


def test_invalid_reference_is_manifest_unknown(reg: ServerThread) -> None:
    """Nothing can be stored under a name that is neither a tag nor a digest: GET/HEAD answer 404
    (the conformance suite's `.INVALID_MANIFEST_NAME`); a push to it is TAG_INVALID."""
    for ref in (".INVALID_MANIFEST_NAME", "-dash", "x" * 129):
        r = reg.get(f"/v2/{NAME}/manifests/{ref}")
        assert r.status == 404 and r.codes == ["MANIFEST_UNKNOWN"], (ref, r.status, r.body)
        _errors_shape(r)
        r = reg.request("HEAD", f"/v2/{NAME}/manifests/{ref}")
        assert r.status == 404 and r.body == b""
    body = _manifest(b"{}", OCI_CONFIG, [])
    _put_blob(reg, NAME, b"{}")
    r = reg.request("PUT", f"/v2/{NAME}/manifests/.INVALID_MANIFEST_NAME", body=body,
                    headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.codes == ["TAG_INVALID"]
