"""The pieces of Docker 20.10's save layout without a daemon: v1 IDs and v1 JSON recorded from a real
``docker save`` (dockerd 20.10.24), Go's time text, the Go tar headers, and the writer's member order."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from strata.digest import Digest, digest_bytes
from strata.errors import DigestMismatch
from strata.image.api import BlobLayer, SimpleImage
from strata.image.spec import Descriptor, ImageConfig
from strata.reference import parse_normalized_named
from strata.transports.docker_archive import ArchiveSink
from strata.transports.gotar import go_header
from strata.transports.legacy_v1 import chain_ids, created_seconds, go_created, v1_layers

BASE = Digest.parse("sha256:5cd4a6f1faf6f48239f3e7e90ed23e2d2290491d8376e8440513b5171c15aa99")
MID = Digest.parse("sha256:b44f64cb5fffb12d4a71a0a611ad16349f3a875a1f197dfcdb12cd4546ac6c33")
# an image config with a string Cmd, keys in other cases, empty maps and lists, a zero pointer field,
# an offset time with a trailing zero, unknown fields; its layers BASE, MID, BASE
CONFIG = {
    "architecture": "amd64", "OS": "linux", "created": "2021-03-04T05:06:07.120000000+01:00", "author": "x <y>",
    "Comment": "a & b",
    "config": {"Cmd": "echo <hi>", "Env": [], "Labels": {"z": "1", "a": "2"}, "ExposedPorts": {}, "Volumes": {},
               "Healthcheck": {"Test": [], "Retries": 0}, "StopTimeout": 0, "Shell": [], "x": 1},
    "container_config": {"cmd": ["a"], "TTY": True}, "history": [{}, {}], "extra": 1,
}  # fmt: skip
EMPTY_CONFIG = (
    '{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,'
    '"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,'
    '"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}'
)
# what dockerd 20.10.24 wrote for CONFIG
DOCKER_IDS = [
    "e706247ab8e32ee3197d577073d6b794c8dea81b971bfb21890fd0a97bc556fa",
    "f752f80fa1914b854ac3b5aca3d0e0ff0bdd56f041255fffb29902e94f9ccdef",
    "0896656f23c22ad9a21a84d752041db449b4445834bb97f059528ece25d2d92c",
]
DOCKER_TOP = (
    '{"id":"0896656f23c22ad9a21a84d752041db449b4445834bb97f059528ece25d2d92c",'
    '"parent":"f752f80fa1914b854ac3b5aca3d0e0ff0bdd56f041255fffb29902e94f9ccdef","comment":"a \\u0026 b",'
    '"created":"2021-03-04T05:06:07.12+01:00","container_config":{"Hostname":"","Domainname":"","User":"",'
    '"AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":true,"OpenStdin":false,"StdinOnce":false,'
    '"Env":null,"Cmd":["a"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,'
    '"Labels":null},"author":"x \\u003cy\\u003e","config":{"Hostname":"","Domainname":"","User":"",'
    '"AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,'
    '"Env":[],"Cmd":["echo \\u003chi\\u003e"],"Healthcheck":{},"Image":"","Volumes":{},"WorkingDir":"",'
    '"Entrypoint":null,"OnBuild":null,"Labels":{"a":"2","z":"1"},"StopTimeout":0},"architecture":"amd64","os":"linux"}'
)


def test_v1_ids_and_json_are_dockers() -> None:
    layers = v1_layers(CONFIG, [BASE, MID, BASE])
    assert [layer.v1_id for layer in layers] == DOCKER_IDS
    assert layers[2].json.decode() == DOCKER_TOP
    bottom = f'{{"id":"{DOCKER_IDS[0]}","created":"1970-01-01T00:00:00Z","container_config":{EMPTY_CONFIG},"os":"linux"}}'
    assert layers[0].json.decode() == bottom
    assert json.loads(layers[1].json)["parent"] == DOCKER_IDS[0]


def test_chain_ids() -> None:
    chains = chain_ids([BASE, MID])
    assert chains[0] == BASE
    assert chains[1] == digest_bytes(f"{BASE} {MID}".encode())


@pytest.mark.parametrize(
    ("text", "go", "seconds"),
    [
        ("2021-03-04T05:06:07.120000000+01:00", "2021-03-04T05:06:07.12+01:00", 1614830767),
        ("2021-03-04T05:06:07Z", "2021-03-04T05:06:07Z", 1614834367),
        ("2021-03-04T05:06:07.000+00:00", "2021-03-04T05:06:07Z", 1614834367),
        ("2021-03-04T05:06:07.1234567891-05:30", "2021-03-04T05:06:07.123456789-05:30", 1614854167),
        (None, "0001-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z", 0),  # moby's Chtimes: before 1970 is the epoch
    ],
)
def test_created_as_go_prints_it(text: str | None, go: str, seconds: int) -> None:
    assert go_created(text) == go
    assert created_seconds(go) == seconds


def test_go_headers() -> None:
    block = go_header("abc/json", tarfile.REGTYPE, 0o100644, 5, 1614830767)
    assert len(block) == 512
    assert block[100:108] == b"0100644\0" and block[124:136] == b"00000000005\0"
    assert block[148:156][-2:] == b"\0 " and block[257:265] == b"ustar\x0000" and block[265:269] == b"root"
    info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    assert (info.name, info.size, info.mtime, info.uname, info.gname) == ("abc/json", 5, 1614830767, "root", "root")
    big = go_header("abc/layer.tar", tarfile.REGTYPE, 0o100644, 9 * 2**30, 1)  # past USTAR's 8 GiB
    assert len(big) == 3 * 512 and big[:30].startswith(b"abc/PaxHeaders.0/layer.tar")
    assert b"19 size=9663676416\n" in big[512:1024] and big[1024 + 124 : 1024 + 136] == b"00000000000\0"


def _image(tmp_path: Path, layers: list[bytes]) -> SimpleImage:
    blobs = []
    for i, data in enumerate(layers):
        path = tmp_path / f"l{i}"
        path.write_bytes(data)
        digest = digest_bytes(data)

        def opener(p: Path = path) -> io.BufferedReader:
            return open(p, "rb")

        blobs.append(BlobLayer(Descriptor("application/vnd.oci.image.layer.v1.tar", digest, len(data)), opener, digest))
    diff_ids = [str(digest_bytes(d)) for d in layers]
    config = ImageConfig.parse(json.dumps({**CONFIG, "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    return SimpleImage(config, blobs)  # type: ignore[arg-type]


def test_writer_order_links_and_manifest(tmp_path: Path) -> None:
    from strata.copier import copy_image

    one, two = b"1" * 1024, b"2" * 1024
    image = _image(tmp_path, [one, two, one])
    out = io.BytesIO()
    sink = ArchiveSink(out)
    copy_image(image, sink, [parse_normalized_named("legacy/w:1")])
    sink.close()
    data = out.getvalue()
    assert len(data) % 512 == 0 and data.endswith(b"\0" * 1024) and len(data) % 10240  # no record padding
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names[-2:] == ["manifest.json", "repositories"] and names[:-2] == sorted(names[:-2])
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layers = manifest[0]["Layers"]
        assert [tar.extractfile(n).read() for n in layers] == [one, two, one]  # type: ignore[union-attr]
        link = tar.getmember(layers[2])
        assert link.issym() and link.linkname == f"../{layers[0]}"
        assert tar.extractfile(f"{layers[0].split('/')[0]}/VERSION").read() == b"1.0"  # type: ignore[union-attr]
        assert json.load(tar.extractfile("repositories")) == {"legacy/w": {"1": layers[2].split("/")[0]}}  # type: ignore[arg-type]
    assert manifest[0]["Config"] == f"{image.image_id().hex}.json" and manifest[0]["RepoTags"] == ["legacy/w:1"]


def test_a_layer_that_is_not_its_diff_id_fails_the_save(tmp_path: Path) -> None:
    """A layer not stored under its diff ID is hashed as it streams: a mismatch fails the save."""
    import gzip

    from strata.copier import copy_image

    image = _image(tmp_path, [b"1" * 1024])
    lie = gzip.compress(b"x" * 1024)
    (tmp_path / "gz").write_bytes(lie)

    def opener() -> io.BufferedReader:
        return open(tmp_path / "gz", "rb")

    layer = BlobLayer(Descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", digest_bytes(lie), len(lie)),
                      opener, digest_bytes(b"1" * 1024))  # fmt: skip
    image = SimpleImage(image.config(), [layer])
    sink = ArchiveSink(io.BytesIO())
    copy_image(image, sink, [])
    with pytest.raises(DigestMismatch):
        sink.close()


def test_manifest_names_the_parent_when_it_is_saved_too(strata: Any, tmp_path: Path) -> None:
    """moby's validatedParentLinks: ``Parent`` only for a parent image in the same archive."""
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        info = tarfile.TarInfo("etc/x")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    strata("import", str(rootfs), "legacy-parent:1")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "a").write_text("a\n")
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM legacy-parent:1\nCOPY a /a\n")
    child = strata("build", "-q", "-t", "legacy-child:1", str(tmp_path / "ctx")).stdout.strip()
    parent = strata("inspect", "-f", "{{.Parent}}", child).stdout.strip()
    assert parent.startswith("sha256:")
    for names, parents in (([child], [None]), ([child, parent], [parent, None])):
        out = strata("save", *names, text=False).stdout
        with tarfile.open(fileobj=io.BytesIO(out)) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert [e.get("Parent") for e in manifest] == parents
        assert [e["RepoTags"] for e in manifest] == [None] * len(names)  # saved by ID: untagged
