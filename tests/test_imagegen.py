"""The test image generator and validator (tests/imagegen.py): what they make is complete, and the
validator finds each way an image or its transport can be incomplete."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from imagegen import (
    GeneratedIndex,
    ImageProblem,
    Link,
    check_image,
    generate,
    layer_tar,
    put,
    put_all,
    validate,
)
from strata.digest import digest_bytes
from strata.image import mediatypes as mt
from strata.image.api import BlobLayer, SimpleImage
from strata.image.spec import ImageConfig

FILES = [{"bin/tool": b"#!/bin/sh\necho hi\n" * 50, "etc/": None}, {"etc/motd": "hello\n", "etc/link": Link("motd")}]
NAMES = ["strata:gen/app:1", "oci:{tmp}/layout:1", "oci-archive:{tmp}/oci.tar:1", "docker-archive:{tmp}/d.tar:gen/app:1"]


def test_layer_tars_are_deterministic_and_hold_what_was_asked() -> None:
    tar = layer_tar(FILES[1])
    assert tar == layer_tar(dict(reversed(list(FILES[1].items()))))
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        members = {m.name: (m.type, m.linkname, m.mode, m.mtime) for m in t}
    assert members == {"etc/link": (tarfile.SYMTYPE, "motd", 0o777, 1_700_000_000),
                       "etc/motd": (tarfile.REGTYPE, "", 0o644, 1_700_000_000)}


@pytest.mark.parametrize("oci", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_a_generated_image_arrives_complete_in_every_local_transport(tmp_path: Path, name: str, oci: bool) -> None:
    image = generate(tmp_path / "blobs", FILES, oci=oci, config={"Cmd": ["/bin/tool"], "Labels": {"a": "b"}})
    want = check_image(image)
    assert want.image_id == str(image.image_id()) and len(want.diff_ids) == 2
    assert want.content_sizes == (len(b"#!/bin/sh\necho hi\n" * 50), len(b"hello\n") + len(b"motd"))
    assert image.manifest().media_type == (mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST)
    target = name.format(tmp=tmp_path)
    put(image, target, root=tmp_path / "store")
    got = validate(target, root=tmp_path / "store")
    assert (got.image_id, got.diff_ids, got.content_sizes) == (want.image_id, want.diff_ids, want.content_sizes)
    if not name.startswith("docker-archive"):  # blobs kept as they are: the same manifest
        assert got.manifest_digest == want.manifest_digest


def test_the_validator_finds_a_layer_that_is_not_its_diff_id(tmp_path: Path) -> None:
    good = generate(tmp_path / "blobs", FILES)
    other = generate(tmp_path / "other", [{"x": b"not the first layer"}, FILES[1]])
    cfg = ImageConfig.parse(good.raw_config())
    bad = SimpleImage(cfg, [other.layers()[0], good.layers()[1]])
    with pytest.raises(ImageProblem) as e:
        check_image(bad)
    assert e.value.problems == [f"layer 0: content is {other.config().diff_ids[0]}, "
                                f"config's diff ID {cfg.diff_ids[0]}"]


def test_the_validator_finds_a_blob_that_is_not_its_descriptor(tmp_path: Path) -> None:
    image = generate(tmp_path / "blobs", FILES)
    layer = image.layers()[1]
    assert isinstance(layer, BlobLayer)
    path = tmp_path / "blobs" / layer.digest().hex
    path.write_bytes(path.read_bytes() + b"\0")  # one byte more: digest and size both wrong
    with pytest.raises(ImageProblem, match=r"layer 1: blob is sha256:\w+ \(\d+ bytes\), manifest says"):
        check_image(image)


def test_the_validator_finds_a_layout_missing_a_blob_or_holding_a_wrong_one(tmp_path: Path) -> None:
    image = generate(tmp_path / "blobs", FILES, oci=True)
    put(image, f"oci:{tmp_path}/layout:1")
    blobs = tmp_path / "layout" / "blobs" / "sha256"
    config = blobs / image.image_id().hex
    config.rename(tmp_path / "aside")
    with pytest.raises(ImageProblem, match=f"reading it back: .*blob {image.image_id()} is missing"):
        validate(f"oci:{tmp_path}/layout:1")
    (tmp_path / "aside").rename(config)
    validate(f"oci:{tmp_path}/layout:1")
    stray = b"a stray blob"
    (blobs / ("0" * 64)).write_bytes(stray)
    with pytest.raises(ImageProblem, match=f"blob sha256:{'0' * 64} holds {digest_bytes(stray)}"):
        validate(f"oci:{tmp_path}/layout:1")


def test_the_validator_finds_a_docker_archive_layer_that_is_not_its_diff_id(tmp_path: Path) -> None:
    image = generate(tmp_path / "blobs", FILES)
    put(image, f"docker-archive:{tmp_path}/a.tar:gen/app:1")
    with tarfile.open(tmp_path / "a.tar") as t:
        files = {m.name: t.extractfile(m).read() for m in t if m.isreg()}  # type: ignore[union-attr]
    entry = json.loads(files["manifest.json"])[0]
    files[entry["Layers"][0]], files[entry["Layers"][1]] = files[entry["Layers"][1]], files[entry["Layers"][0]]
    with tarfile.open(tmp_path / "b.tar", "w") as t:
        for n, data in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    with pytest.raises(ImageProblem, match=r"layer 0: content is .*, config's diff ID"):
        validate(f"docker-archive:{tmp_path}/b.tar")


def test_the_validator_finds_a_store_row_that_lies(tmp_path: Path) -> None:
    image = generate(tmp_path / "blobs", FILES)
    root = tmp_path / "store"
    put(image, "strata:gen/app:1", root=root)
    validate("strata:gen/app:1", root=root)
    db = sqlite3.connect(root / "strata.db")
    db.execute("UPDATE layers SET size = size + 1 WHERE diff_id = ?", (str(image.config().diff_ids[1]),))
    db.commit()
    db.close()
    with pytest.raises(ImageProblem, match=r"rows say \(\d+, \d+\)"):
        validate("strata:gen/app:1", root=root)


def test_plain_and_gzip_layers(tmp_path: Path) -> None:
    plain = generate(tmp_path / "plain", FILES, gz=False)
    assert [lay.digest() for lay in plain.layers()] == plain.config().diff_ids
    zipped = generate(tmp_path / "gz", FILES, level=1)
    assert [gzip.decompress((tmp_path / "gz" / lay.digest().hex).read_bytes()) for lay in zipped.layers()] == [
        (tmp_path / "plain" / d.hex).read_bytes() for d in plain.config().diff_ids]
    assert check_image(plain).diff_ids == check_image(zipped).diff_ids


def test_a_generated_index_is_copied_whole_as_copy_all_does(tmp_path: Path) -> None:
    shared = {"etc/shared": b"same on every platform"}
    amd = generate(tmp_path / "amd", [shared, {"bin/amd64": b"x86" * 100}], oci=True)
    arm = generate(tmp_path / "arm", [shared, {"bin/arm64": b"arm" * 100}], oci=True, architecture="arm64",
                   variant="v8")
    index = GeneratedIndex([amd, arm])
    put_all(index, f"oci:{tmp_path}/layout:1")
    entries = json.loads((tmp_path / "layout" / "index.json").read_text())["manifests"]
    assert [(e["digest"], e["mediaType"]) for e in entries] == [(index.digest, mt.OCI_INDEX)]
    children = json.loads((tmp_path / "layout" / "blobs" / "sha256" / index.digest[7:]).read_bytes())["manifests"]
    assert [(c["digest"], c["platform"]) for c in children] == [
        (str(amd.digest()), {"architecture": "amd64", "os": "linux"}),
        (str(arm.digest()), {"architecture": "arm64", "os": "linux", "variant": "v8"})]
    assert amd.layers()[0].digest() == arm.layers()[0].digest()  # one blob for the shared layer
    assert validate(f"oci:{tmp_path}/layout:1").image_id == str(amd.image_id())  # every blob checked
