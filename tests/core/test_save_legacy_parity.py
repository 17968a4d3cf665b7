"""``strata save`` against Docker 20.10's ``docker save``, side by side in a private dockerd: the same
hand-made images loaded into both, saved by both, and the archives compared byte for byte.

The one thing Docker writes from the clock: a layer directory whose layer.tar is a symlink to an
earlier copy of the same layer keeps the time of the save (moby sets no time there). Those headers'
mtime (and so checksum) fields are blanked in both archives before the comparison; nothing else is."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

pytestmark = pytest.mark.peers


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_600_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _archive(path: Path, images: list[tuple[dict[str, Any], list[bytes], list[str]]], gzipped: bytes = b"") -> list[str]:
    """A docker-archive of ``images`` (config without rootfs, layer tars, tags); their image IDs. The
    layer ``gzipped`` is stored gzip-compressed (as Docker's load takes it)."""
    import gzip

    members: dict[str, bytes] = {}
    manifest, ids = [], []
    for config, layers, tags in images:
        names = []
        for data in layers:
            name = f"{hashlib.sha256(data).hexdigest()}/layer.tar"
            members[name] = gzip.compress(data, mtime=0) if data == gzipped else data
            names.append(name)
        diff_ids = [f"sha256:{hashlib.sha256(d).hexdigest()}" for d in layers]
        raw = json.dumps({**config, "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        cid = hashlib.sha256(raw).hexdigest()
        members[f"{cid}.json"] = raw
        manifest.append({"Config": f"{cid}.json", "RepoTags": tags, "Layers": names})
        ids.append(f"sha256:{cid}")
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return ids


def _headers(data: bytes) -> list[tuple[int, tarfile.TarInfo]]:
    """Every member's header offset and info, read from the raw bytes."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            out.append((member.offset, member))
    return out


def _blank_clock(data: bytes) -> bytes:
    """The archive with the mtime and checksum of the members Docker times with the clock blanked:
    the directory, VERSION, json and symlink of a layer directory whose layer.tar is a symlink."""
    headers = _headers(data)
    linked = {m.name.split("/")[0] for _, m in headers if m.issym() and m.name.endswith("/layer.tar")}
    out = bytearray(data)
    for offset, member in headers:
        if member.name.split("/")[0] in linked:
            out[offset + 136 : offset + 156] = b"\0" * 20
    return bytes(out)


def _listing(data: bytes) -> list[tuple[Any, ...]]:
    return [(m.name, m.type, m.mode, m.uid, m.gid, m.uname, m.gname, m.size, m.linkname) for _, m in _headers(data)]


def _both_save(dockerd: Any, strata: Strata, tmp_path: Path, *names: str, label: str = "x") -> tuple[bytes, bytes]:
    docker_out, strata_out = tmp_path / f"docker-{label}.tar", tmp_path / f"strata-{label}.tar"
    dockerd.run("save", "-o", str(docker_out), *names)
    strata("save", "-o", str(strata_out), *names)
    return docker_out.read_bytes(), strata_out.read_bytes()


def _assert_same_archive(docker: bytes, ours: bytes) -> None:
    assert _listing(ours) == _listing(docker)
    with tarfile.open(fileobj=io.BytesIO(docker)) as d, tarfile.open(fileobj=io.BytesIO(ours)) as s:
        for member in d:
            if member.isreg():
                assert s.extractfile(member.name).read() == d.extractfile(member).read(), member.name  # type: ignore[union-attr]
    assert _blank_clock(ours) == _blank_clock(docker)


@pytest.fixture
def images(dockerd: Any, strata: Strata, tmp_path: Path) -> Any:
    """Two images (a shared base layer; the first repeats a layer; the second's top layer comes
    gzip-compressed, so strata stores it so and decompresses it to save) loaded into dockerd and strata."""
    repo = f"savelegacy-{uuid.uuid4().hex[:12]}"
    base = _layer({"etc/base": uuid.uuid4().hex.encode(), "bin/tool": b"#!/bin/sh\n"})
    mid = _layer({"app/a": b"a\n"})
    top = _layer({"app/b": uuid.uuid4().hex.encode()})
    other = _layer({"other": uuid.uuid4().hex.encode()})
    created = "2021-03-04T05:06:07.123456789Z"
    history = [{"created": created, "created_by": "/bin/sh -c #(nop) ADD x"}] * 4
    full = {
        "architecture": "amd64", "os": "linux", "created": created, "author": "someone <a@b>",
        "comment": "a & b", "docker_version": "20.10.24", "container": "c0ffee",
        "config": {
            "Hostname": "", "User": "1:2", "Env": ["A=<b>", "PATH=/bin"], "Cmd": ["/bin/sh", "-c", "a && b > c"],
            "Labels": {"z": "1", "a": "2"}, "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}, "Volumes": {"/v": {}},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000, "Retries": 3},
            "StopTimeout": 0, "StopSignal": "SIGINT", "Shell": ["/bin/bash", "-c"], "OnBuild": [],
            "WorkingDir": "/w", "Entrypoint": None, "x-unknown": 1,
        },
        "container_config": {"Cmd": "echo string form", "Env": [], "Tty": True, "ArgsEscaped": True},
        "history": history, "x-top": True,
    }  # fmt: skip
    odd = {
        "architecture": "amd64", "OS": "linux", "created": "2020-01-02T03:04:05.5+02:00",
        "Config": {"cmd": ["x"], "env": None, "labels": {}}, "history": history[:2],
    }  # fmt: skip
    archive = tmp_path / "in.tar"
    ids = _archive(archive, [(full, [base, mid, base, top], [f"{repo}:1", f"{repo}:2"]),
                             (odd, [base, other], [f"{repo}-odd:1"])], gzipped=other)  # fmt: skip
    dockerd.run("load", "-i", str(archive))
    strata("load", "-i", str(archive))
    yield repo, ids
    dockerd.run("rmi", "-f", *ids, check=False)


def test_save_of_one_image_is_dockers_byte_for_byte(dockerd: Any, strata: Strata, images: Any, tmp_path: Path) -> None:
    repo, _ = images
    docker, ours = _both_save(dockerd, strata, tmp_path, f"{repo}:1")
    _assert_same_archive(docker, ours)
    names = [m.name for _, m in _headers(ours)]
    assert names[-2:] == ["manifest.json", "repositories"] and names[:-2] == sorted(names[:-2])
    assert sum(1 for _, m in _headers(ours) if m.issym()) == 1  # the repeated base layer is a link
    # and strata loads Docker's archive back as the same image
    (tmp_path / "docker.tar").write_bytes(docker)
    strata("rmi", f"{repo}:1", f"{repo}:2")
    assert strata("load", "-i", str(tmp_path / "docker.tar")).stdout == f"Loaded image: {repo}:1\n"
    assert strata("image", "inspect", "-f", "{{.Id}}", f"{repo}:1").stdout.strip() == images[1][0]


def test_save_of_odd_configs_and_tags(dockerd: Any, strata: Strata, images: Any, tmp_path: Path) -> None:
    repo, _ = images
    # a string Cmd, keys in another case, an offset time, unknown fields: Go's decoding and encoding
    _assert_same_archive(*_both_save(dockerd, strata, tmp_path, f"{repo}-odd:1", label="odd"))
    # a repository saves all its tags; both tags given: one image, two RepoTags
    _assert_same_archive(*_both_save(dockerd, strata, tmp_path, repo, label="repo"))
    _assert_same_archive(*_both_save(dockerd, strata, tmp_path, f"{repo}:2", f"{repo}:1", label="two"))


def test_save_by_id_has_no_tags(dockerd: Any, strata: Strata, images: Any, tmp_path: Path) -> None:
    _, ids = images
    docker, ours = _both_save(dockerd, strata, tmp_path, ids[1], label="id")
    _assert_same_archive(docker, ours)
    with tarfile.open(fileobj=io.BytesIO(ours)) as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["RepoTags"] is None  # type: ignore[arg-type]
        assert "repositories" not in tar.getnames()


def test_save_of_several_images(dockerd: Any, strata: Strata, images: Any, tmp_path: Path) -> None:
    """Docker walks its images in Go map order: manifest.json's entries compare as a set; the members
    (name order), their bytes and repositories are the same."""
    repo, _ = images
    docker, ours = _both_save(dockerd, strata, tmp_path, f"{repo}:1", f"{repo}-odd:1", label="several")
    assert _listing(ours) == _listing(docker)
    with tarfile.open(fileobj=io.BytesIO(docker)) as d, tarfile.open(fileobj=io.BytesIO(ours)) as s:
        for member in d:
            if member.isreg() and member.name != "manifest.json":
                assert s.extractfile(member.name).read() == d.extractfile(member).read(), member.name  # type: ignore[union-attr]
        entries = [json.load(t.extractfile("manifest.json")) for t in (d, s)]  # type: ignore[arg-type]
    assert sorted(entries[0], key=json.dumps) == sorted(entries[1], key=json.dumps)
    assert [e["RepoTags"] for e in entries[1]] == [[f"{repo}:1"], [f"{repo}-odd:1"]]  # ours: the order asked


def test_save_to_stdout_is_the_file(strata: Strata, images: Any, tmp_path: Path) -> None:
    repo, _ = images
    strata("save", "-o", str(tmp_path / "f.tar"), f"{repo}-odd:1")
    assert strata("save", f"{repo}-odd:1", text=False).stdout == (tmp_path / "f.tar").read_bytes()


def test_docker_and_skopeo_read_strata_archive(dockerd: Any, strata: Strata, skopeo: Any, tmp_path: Path) -> None:
    repo = f"savelegacy-back-{uuid.uuid4().hex[:12]}"
    a, b = _layer({"f": uuid.uuid4().hex.encode()}), _layer({"g": b"g"})
    config = {"architecture": "amd64", "os": "linux", "created": "2022-01-01T00:00:00Z", "config": {"Cmd": ["/f"]}}
    (image_id,) = _archive(tmp_path / "in.tar", [(config, [a, b, a], [f"{repo}:1"])])
    strata("load", "-i", str(tmp_path / "in.tar"))
    strata("tag", f"{repo}:1", f"{repo}:2")
    strata("save", "-o", str(tmp_path / "s.tar"), f"{repo}:1", f"{repo}:2")
    try:
        out = dockerd.run("load", "-i", str(tmp_path / "s.tar")).stdout
        assert out.splitlines() == [f"Loaded image: {repo}:1", f"Loaded image: {repo}:2"]
        assert dockerd.run("image", "inspect", "-f", "{{.Id}}", f"{repo}:2").stdout.strip() == image_id
    finally:
        dockerd.run("rmi", "-f", image_id, check=False)
    res = skopeo("inspect", "--config", f"docker-archive:{tmp_path / 's.tar'}:{repo}:1")
    assert json.loads(res.stdout)["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(x).hexdigest()}" for x in (a, b, a)]
    skopeo("copy", f"docker-archive:{tmp_path / 's.tar'}:{repo}:2", f"oci:{tmp_path / 'layout'}:x")
    assert strata("load", "-i", str(tmp_path / "s.tar")).stdout.splitlines() == [
        f"Loaded image: {repo}:1", f"Loaded image: {repo}:2"]  # fmt: skip


def test_docker25_and_oci_archives_still_load(strata: Strata, tmp_path: Path) -> None:
    """Docker 25's save layout (docker-archive and OCI layout in one) and a bare OCI archive."""
    layer = _layer({"f": uuid.uuid4().hex.encode()})
    diff = hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff}"]}}).encode()
    cid = hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{cid}", "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": f"sha256:{diff}", "size": len(layer)}],
    }).encode()  # fmt: skip
    mdig = hashlib.sha256(manifest).hexdigest()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{mdig}", "size": len(manifest),
        "annotations": {"io.containerd.image.name": "docker.io/library/d25:1", "org.opencontainers.image.ref.name": "1"}}]}).encode()  # fmt: skip
    blobs = {f"blobs/sha256/{diff}": layer, f"blobs/sha256/{cid}": config, f"blobs/sha256/{mdig}": manifest}
    common = {**blobs, "oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index}
    docker25 = {**common, "manifest.json": json.dumps([{"Config": f"blobs/sha256/{cid}", "RepoTags": ["d25:1"],
                                                        "Layers": [f"blobs/sha256/{diff}"]}]).encode()}  # fmt: skip
    for name, members in (("d25.tar", docker25), ("oci.tar", common)):
        with tarfile.open(tmp_path / name, "w") as tar:
            for member, data in members.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        out = strata("load", "-i", str(tmp_path / name)).stdout
        assert out in ("Loaded image: d25:1\n", f"Loaded image ID: sha256:{cid}\n", "Loaded image: docker.io/library/d25:1\n"), out
        assert strata("image", "inspect", "-f", "{{.Id}}", f"sha256:{cid}").stdout.strip() == f"sha256:{cid}"
        strata("rmi", "-f", f"sha256:{cid}")
