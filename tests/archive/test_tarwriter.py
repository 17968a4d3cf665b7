"""TarWriter (member by member, for archives such as docker save) and apply_tar."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from archive.helpers import Entry, make_tar, members
from strata import archive
from strata.archive import TarWriter, apply_tar
from strata.errors import InvalidArchive, StoreError


def test_writer_members_and_end(tmp_path: Path) -> None:
    out = io.BytesIO()
    with TarWriter(out) as w:
        w.add_dir("blobs/sha256", mtime=5)
        w.add_bytes("blobs/sha256/abc", b"x" * 700)
        w.add_symlink("abc/layer.tar", "../blobs/sha256/abc")
        info = tarfile.TarInfo("stream")
        info.size = 3
        w.add(info, io.BytesIO(b"123456"))
    data = out.getvalue()
    assert data.endswith(bytes(1024)) and len(data) % 512 == 0
    got = {m.name: m for m in members(data)}
    assert got["blobs/sha256"].isdir() and got["blobs/sha256"].mtime == 5
    assert got["abc/layer.tar"].linkname == "../blobs/sha256/abc"
    info = apply_tar(io.BytesIO(data), tmp_path)
    assert (tmp_path / "blobs/sha256/abc").read_bytes() == b"x" * 700
    assert (tmp_path / "stream").read_bytes() == b"123"
    assert str(info.diff_id) == "sha256:" + hashlib.sha256(data).hexdigest()


def test_writer_refuses_short_data() -> None:
    info = tarfile.TarInfo("f")
    info.size = 10
    with pytest.raises(StoreError, match="shrank"):
        TarWriter(io.BytesIO()).add(info, io.BytesIO(b"abc"))


def test_apply_tar_has_no_whiteout_meaning_but_the_same_safety(tmp_path: Path) -> None:
    apply_tar(io.BytesIO(make_tar([Entry(".wh.x", data=b"plain")])), tmp_path)
    assert (tmp_path / ".wh.x").read_bytes() == b"plain"
    with pytest.raises(InvalidArchive, match="escapes"):
        apply_tar(io.BytesIO(make_tar([Entry("../x", data=b"x")])), tmp_path)


def test_public_api_is_exported() -> None:
    assert len(set(archive.__all__)) == len(archive.__all__)
    for name in archive.__all__:
        assert hasattr(archive, name), name
