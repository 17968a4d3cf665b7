"""OuterArchive: random access to docker/oci archive members, links resolved inside, hostile ones refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
from pathlib import Path

import pytest

from archive.helpers import Entry, make_tar
from strata.archive import Compression, OuterArchive, apply_layer, compressor
from strata.errors import InvalidArchive

D, R, S, L = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


@pytest.fixture(scope="module")
def layer() -> bytes:
    return make_tar([Entry("etc", D, mode=0o755), Entry("etc/hostname", data=b"box\n"),
                     Entry("big", data=os.urandom(500_000))])


@pytest.fixture(scope="module")
def archive_bytes(layer: bytes) -> bytes:
    hexd = hashlib.sha256(layer).hexdigest()
    manifest = json.dumps([{"Config": "blobs/sha256/cfg", "Layers": [f"{hexd[:12]}/layer.tar"]}]).encode()
    return make_tar([
        Entry("blobs", D, mode=0o755),
        Entry("blobs/sha256", D, mode=0o755),
        Entry(f"blobs/sha256/{hexd}", data=layer),
        Entry("blobs/sha256/cfg", data=b'{"config": true}'),
        Entry(f"{hexd[:12]}", D, mode=0o755),
        Entry(f"{hexd[:12]}/layer.tar", S, linkname=f"../blobs/sha256/{hexd}"),
        Entry("hard.tar", L, linkname=f"blobs/sha256/{hexd}"),
        Entry("./manifest.json", data=manifest),
        Entry("repositories", data=b"old"),
        Entry("repositories", data=b"{}"),  # a later duplicate wins, as in tar
    ])


def check(archive: OuterArchive, layer: bytes, tmp_path: Path) -> None:
    manifest = json.loads(archive.read_bytes("manifest.json"))
    name = manifest[0]["Layers"][0]
    assert name in archive and "nope" not in archive
    assert archive.size(name) == len(layer)
    assert archive.open_member(name).read() == layer
    assert archive.open_member("hard.tar").read() == layer
    assert archive.read_bytes("repositories") == b"{}"
    assert archive.read_bytes("blobs/sha256/cfg") == b'{"config": true}'
    assert "manifest.json" in archive.names() and name in archive.names()
    info = apply_layer(archive.open_member(name), tmp_path / "rootfs")
    assert str(info.diff_id) == "sha256:" + hashlib.sha256(layer).hexdigest()
    assert (tmp_path / "rootfs/etc/hostname").read_bytes() == b"box\n"
    r = archive.open_member(name)
    r.seek(10)
    assert r.read(5) == layer[10:15] and r.tell() == 15


def test_plain_file_is_used_in_place(tmp_path: Path, archive_bytes: bytes, layer: bytes) -> None:
    path = tmp_path / "save.tar"
    path.write_bytes(archive_bytes)
    spool = tmp_path / "spool"
    spool.mkdir()
    with OuterArchive.open(path, spool_dir=spool) as archive:
        assert archive.compression is Compression.NONE
        check(archive, layer, tmp_path)
    assert os.listdir(spool) == []


@pytest.mark.parametrize("kind", [Compression.GZIP, Compression.ZSTD, Compression.XZ, Compression.BZIP2])
def test_compressed_file_is_spooled(tmp_path: Path, archive_bytes: bytes, layer: bytes, kind: Compression) -> None:
    path = tmp_path / "save.tar.x"
    with open(path, "wb") as f, compressor(kind, f) as w:
        w.write(archive_bytes)
    with OuterArchive.open(path, spool_dir=tmp_path) as archive:
        assert archive.compression is kind
        check(archive, layer, tmp_path)


def test_non_seekable_stream(tmp_path: Path, archive_bytes: bytes, layer: bytes) -> None:
    r, w = os.pipe()
    data = gzip.compress(archive_bytes)

    def feed() -> None:
        with os.fdopen(w, "wb") as out:
            out.write(data)

    t = threading.Thread(target=feed)
    t.start()
    with os.fdopen(r, "rb") as src, OuterArchive.open(src) as archive:
        check(archive, layer, tmp_path)
    t.join()


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([Entry("../evil", data=b"x")], "escapes"),
        ([Entry("/abs", data=b"x")], "absolute"),
        ([Entry("l", S, linkname="../../etc/passwd")], "points outside the archive"),
        ([Entry("d", D), Entry("d/l", S, linkname="../../x")], "points outside the archive"),
        ([Entry("l", S, linkname="/etc/passwd")], "points outside the archive"),
        ([Entry("h", L, linkname="../x")], "escapes"),
        ([Entry("dev", tarfile.CHRTYPE, devmajor=1, devminor=3)], "device node"),
    ],
)
def test_hostile_archives(tmp_path: Path, entries: list[Entry], problem: str) -> None:
    path = tmp_path / "bad.tar"
    path.write_bytes(make_tar(entries))
    with pytest.raises(InvalidArchive, match=problem):
        OuterArchive.open(path)


def test_link_loops_and_missing_targets(tmp_path: Path) -> None:
    path = tmp_path / "loop.tar"
    path.write_bytes(make_tar([Entry("a", S, linkname="b"), Entry("b", S, linkname="a"),
                               Entry("c", S, linkname="missing")]))
    with OuterArchive.open(path) as archive:
        assert archive.names() == []
        with pytest.raises(InvalidArchive, match="too many levels of links"):
            archive.open_member("a")
        with pytest.raises(InvalidArchive, match="not in the archive"):
            archive.open_member("c")
        with pytest.raises(InvalidArchive, match="unsafe member name"):
            archive.open_member("../a")


@pytest.mark.parametrize("where", ["in-layer-data", "at-last-header", "in-last-header", "in-last-data"])
def test_truncated_archive(tmp_path: Path, archive_bytes: bytes, layer: bytes, where: str) -> None:
    last_header = archive_bytes.rindex(b"repositories")
    cut = {
        "in-layer-data": archive_bytes.index(layer) + 1000,
        "at-last-header": last_header,
        "in-last-header": last_header + 100,
        "in-last-data": last_header + 513,
    }[where]
    path = tmp_path / "cut.tar"
    path.write_bytes(archive_bytes[:cut])
    with pytest.raises(InvalidArchive, match=r"unexpected EOF|truncated|end-of-archive"):
        OuterArchive.open(path).close()


def test_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{}" * 400)
    with pytest.raises(InvalidArchive, match="unsupported compression or not a tar archive"):
        OuterArchive.open(path)
    with pytest.raises(InvalidArchive, match="empty input"):
        OuterArchive.open(io.BytesIO(b""))


def test_read_bytes_limit(tmp_path: Path, archive_bytes: bytes) -> None:
    path = tmp_path / "save.tar"
    path.write_bytes(archive_bytes)
    with OuterArchive.open(path) as archive, pytest.raises(InvalidArchive, match="too large"):
        archive.read_bytes("hard.tar", limit=1000)
