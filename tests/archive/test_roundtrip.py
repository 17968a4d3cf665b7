"""dir -> tar -> apply -> identical tree; DiffIDs computed while streaming; deterministic tar bytes."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from archive.helpers import members, snapshot
from strata.archive import Compression, apply_layer, open_decompressed, write_tar_from_dir
from strata.digest import Digest
from strata.errors import DigestMismatch

ROOT = os.geteuid() == 0


def build_tree(root: Path) -> None:
    (root / "etc/deep/er").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc/deep/er/blob").write_bytes(os.urandom(300_000))
    (root / "empty").write_bytes(b"")
    (root / "bin").mkdir()
    (root / "bin/tool").write_bytes(b"\x7fELF" + bytes(1000))
    os.chmod(root / "bin/tool", 0o4755)
    os.link(root / "bin/tool", root / "bin/tool-hardlink")
    os.symlink("/etc/passwd", root / "abs-link")
    os.symlink("../etc", root / "bin/rel-link")
    os.symlink("dangling/target", root / "dangling")
    os.mkfifo(root / "fifo", 0o620)
    long_dir = root / ("d" * 120) / ("e" * 120)
    long_dir.mkdir(parents=True)
    (long_dir / ("f" * 150)).write_text("long names need PAX records")
    (root / "ünïcödé-name").write_text("utf-8 name")
    (root / "ro-dir").mkdir()
    (root / "ro-dir/inside").write_text("x")
    os.chmod(root / "ro-dir", 0o555)
    (root / "sticky").mkdir(mode=0o777)
    os.chmod(root / "sticky", 0o1777)
    os.setxattr(root / "etc/passwd", "user.note", b"\x00binary\xffvalue")
    os.setxattr(root / "etc", "user.dir", b"on a dir")
    if ROOT:
        os.chown(root / "etc/passwd", 1234, 5678)
        os.chown(root / "dangling", 42, 43, follow_symlinks=False)
        os.chown(root / "ro-dir", 7, 8)
    for i, p in enumerate(sorted(root.rglob("*"))):
        os.utime(p, (1_500_000_000 + i, 1_500_000_000 + i), follow_symlinks=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    build_tree(src)
    return src


def test_round_trip_is_identical(tree: Path, tmp_path: Path) -> None:
    out = io.BytesIO()
    written = write_tar_from_dir(tree, out)
    data = out.getvalue()
    assert written.diff_id == Digest("sha256", hashlib.sha256(data).hexdigest())
    assert written.size == len(data) == written.compressed_size
    dest = tmp_path / "dest"
    applied = apply_layer(io.BytesIO(data), dest)
    assert applied.diff_id == written.diff_id and applied.size == written.size
    assert snapshot(dest) == snapshot(tree)
    again = io.BytesIO()
    assert write_tar_from_dir(dest, again).diff_id == written.diff_id
    assert again.getvalue() == data


def test_same_tree_twice_gives_the_same_bytes(tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", "--preserve=all", str(tree), str(copy)], check=True)
    a, b, c = io.BytesIO(), io.BytesIO(), io.BytesIO()
    write_tar_from_dir(tree, a)
    write_tar_from_dir(tree, b)
    write_tar_from_dir(copy, c)
    assert a.getvalue() == b.getvalue() == c.getvalue()


def test_tar_shape_matches_docker_layers(tree: Path) -> None:
    out = io.BytesIO()
    write_tar_from_dir(tree, out)
    data = out.getvalue()
    assert len(data) % 512 == 0 and data.endswith(bytes(1024))
    assert data[-1536:-1024] != bytes(512)  # two zero blocks, no 10240-byte record padding
    names = [m.name for m in members(data)]
    assert not any(n.startswith(("./", "/")) for n in names)
    assert names == sorted(names, key=lambda n: [os.fsencode(p) for p in n.split("/")])
    raw = {m.name: m for m in members(data)}
    assert raw["bin/tool-hardlink"].islnk() and raw["bin/tool-hardlink"].linkname == "bin/tool"
    assert raw["etc/passwd"].uname == "" and isinstance(raw["etc/passwd"].mtime, int)
    assert raw["etc/passwd"].pax_headers["SCHILY.xattr.user.note"].encode("utf-8", "surrogateescape") == (
        b"\x00binary\xffvalue"
    )
    assert data[257:263] == b"ustar\x00"  # POSIX header


def test_gnu_tar_reads_our_tars(tree: Path, tmp_path: Path) -> None:
    if shutil.which("tar") is None:
        pytest.skip("tar not installed")
    tar_file = tmp_path / "layer.tar"
    with open(tar_file, "wb") as f:
        write_tar_from_dir(tree, f)
    dest = tmp_path / "gnu"
    dest.mkdir()
    subprocess.run(["tar", "-xpf", str(tar_file), "--xattrs", "--xattrs-include=user.*", "-C", str(dest)], check=True)
    assert snapshot(dest) == snapshot(tree)


def test_we_read_gnu_tar_tars(tree: Path, tmp_path: Path) -> None:
    if shutil.which("tar") is None:
        pytest.skip("tar not installed")
    for fmt in ("gnu", "posix", "ustar"):
        tar_file = tmp_path / f"{fmt}.tar"
        cmd = ["tar", "-cf", str(tar_file), f"--format={fmt}", "-C", str(tree), "."]
        if fmt == "ustar":
            cmd = ["tar", "-cf", str(tar_file), "--format=ustar", "-C", str(tree), "etc", "bin"]
        if fmt == "posix":
            cmd[1:1] = ["--xattrs"]
        subprocess.run(cmd, check=True, capture_output=True)
        dest = tmp_path / f"from-{fmt}"
        with open(tar_file, "rb") as f:
            info = apply_layer(f, dest)
        assert info.diff_id == Digest("sha256", hashlib.sha256(tar_file.read_bytes()).hexdigest())
        expected = snapshot(tree)
        got = snapshot(dest)
        if fmt == "ustar":
            expected = {k: v for k, v in expected.items() if k.split("/")[0] in ("etc", "bin")}
        if fmt != "posix":  # only posix carries xattrs
            expected = {k: v[:6] + v[7:] for k, v in expected.items()}
            got = {k: v[:6] + v[7:] for k, v in got.items()}
        assert got == expected, fmt


@pytest.mark.parametrize("kind", [Compression.GZIP, Compression.ZSTD, Compression.BZIP2, Compression.XZ])
def test_compressed_layers_have_the_same_diff_id(tree: Path, tmp_path: Path, kind: Compression) -> None:
    plain = io.BytesIO()
    base = write_tar_from_dir(tree, plain)
    blob = io.BytesIO()
    made = write_tar_from_dir(tree, blob, compression=kind)
    assert made.diff_id == base.diff_id and made.size == base.size
    assert made.digest == Digest("sha256", hashlib.sha256(blob.getvalue()).hexdigest())
    assert made.compressed_size == len(blob.getvalue()) and made.compression is kind
    assert open_decompressed(io.BytesIO(blob.getvalue())).read() == plain.getvalue()
    applied = apply_layer(io.BytesIO(blob.getvalue()), tmp_path / "dest")
    assert (applied.diff_id, applied.size, applied.digest, applied.compression) == (
        base.diff_id, base.size, made.digest, kind,
    )
    assert snapshot(tmp_path / "dest") == snapshot(tree)
    again = io.BytesIO()
    write_tar_from_dir(tree, again, compression=kind)
    assert again.getvalue() == blob.getvalue()  # recompressing gives the same blob


def test_diff_id_covers_bytes_after_the_end_marker(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/f").write_text("x")
    out = io.BytesIO()
    write_tar_from_dir(tmp_path / "src", out)
    padded = out.getvalue() + bytes(10240 - len(out.getvalue()) % 10240)
    info = apply_layer(io.BytesIO(padded), tmp_path / "dest")
    assert info.size == len(padded)
    assert info.diff_id == Digest("sha256", hashlib.sha256(padded).hexdigest())


def test_expected_diff_id_mismatch(tree: Path, tmp_path: Path) -> None:
    out = io.BytesIO()
    write_tar_from_dir(tree, out)
    wrong = Digest("sha256", "0" * 64)
    with pytest.raises(DigestMismatch, match="does not match its diff ID"):
        apply_layer(io.BytesIO(out.getvalue()), tmp_path / "dest", expected_diff_id=wrong)


def test_sockets_are_skipped(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(src / "sock"))
        out = io.BytesIO()
        write_tar_from_dir(src, out)
    assert [m.name for m in members(out.getvalue())] == ["f"]


def test_empty_dir_gives_an_empty_tar(tmp_path: Path) -> None:
    out = io.BytesIO()
    info = write_tar_from_dir(tmp_path, out)
    assert out.getvalue() == bytes(1024)
    # the well-known DiffID of Docker's empty layer
    assert str(info.diff_id) == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


@pytest.mark.skipif(not ROOT, reason="restoring ownership needs root")
def test_ownership_is_restored_as_root(tree: Path, tmp_path: Path) -> None:
    out = io.BytesIO()
    write_tar_from_dir(tree, out)
    apply_layer(io.BytesIO(out.getvalue()), tmp_path / "dest")
    assert os.stat(tmp_path / "dest/etc/passwd").st_uid == 1234
    assert os.lstat(tmp_path / "dest/dangling").st_gid == 43
    apply_layer(io.BytesIO(out.getvalue()), tmp_path / "mine", same_owner=False)
    assert os.stat(tmp_path / "mine/etc/passwd").st_uid == os.geteuid()


def test_tee_receives_the_blob_as_given(tree: Path, tmp_path: Path) -> None:
    blob = io.BytesIO()
    made = write_tar_from_dir(tree, blob, compression=Compression.GZIP)
    copy = io.BytesIO()
    info = apply_layer(io.BytesIO(blob.getvalue() + bytes(100)), tmp_path / "dest", tee=copy)
    assert copy.getvalue() == blob.getvalue() + bytes(100)
    assert info.diff_id == made.diff_id
    assert info.digest == Digest("sha256", hashlib.sha256(copy.getvalue()).hexdigest())
