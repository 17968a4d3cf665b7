"""apply_layer refuses hostile layers, names the member, and never touches anything outside dest."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from archive.helpers import Entry, make_tar, snapshot
from strata.archive import apply_layer
from strata.errors import InvalidArchive

D, R, S, L = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """dest and a sibling 'outside' directory with a file that must never change."""
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (outside / "victim").write_text("precious")
    return dest, outside


def apply_refused(dest: Path, data: bytes, match: str, **kw: object) -> InvalidArchive:
    with pytest.raises(InvalidArchive, match=match) as info:
        apply_layer(io.BytesIO(data), dest, **kw)  # type: ignore[arg-type]
    return info.value


def assert_outside_untouched(outside: Path) -> None:
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_text() == "precious"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../outside/victim", "escapes the layer"),
        ("a/../../outside/victim", "escapes the layer"),
        ("./../x", "escapes the layer"),
        ("..", "escapes the layer"),
        ("/etc/evil", "absolute paths are not allowed"),
        ("//abs", "absolute paths are not allowed"),
    ],
)
def test_member_names_that_leave_dest(sandbox: tuple[Path, Path], name: str, problem: str) -> None:
    dest, outside = sandbox
    err = apply_refused(dest, make_tar([Entry(name, data=b"pwned")]), problem)
    assert repr(name) in str(err)
    assert_outside_untouched(outside)


@pytest.mark.parametrize("mode", ["oci", "overlay"])
@pytest.mark.parametrize(
    "target", ["../outside", "/", "../../../../../../..", "", "."]
)
def test_symlink_then_write_through_it(sandbox: tuple[Path, Path], mode: str, target: str) -> None:
    dest, outside = sandbox
    target = target or str(outside)
    entries = [Entry("evil", S, linkname=target), Entry("evil/victim", data=b"pwned")]
    err = apply_refused(dest, make_tar(entries), r"path component 'evil' is a symlink", whiteouts=mode)
    assert "'evil/victim'" in str(err)
    assert_outside_untouched(outside)


def test_symlink_in_a_deeper_component(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    entries = [
        Entry("a", D, mode=0o755),
        Entry("a/b", S, linkname=str(outside)),
        Entry("a/b/c/d", data=b"pwned"),
    ]
    apply_refused(dest, make_tar(entries), r"refusing 'a/b/c/d': path component 'a/b' is a symlink")
    assert_outside_untouched(outside)


def test_symlink_from_an_earlier_layer_is_not_written_through(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    apply_layer(io.BytesIO(make_tar([Entry("lib", S, linkname=str(outside))])), dest)
    apply_refused(dest, make_tar([Entry("lib/victim", data=b"pwned")]), "'lib' is a symlink")
    apply_refused(dest, make_tar([Entry("lib/sub", D, mode=0o755)]), "'lib' is a symlink")
    assert_outside_untouched(outside)


def test_whiteout_below_a_symlink_deletes_nothing(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    apply_layer(io.BytesIO(make_tar([Entry("lib", S, linkname=str(outside))])), dest)
    apply_layer(io.BytesIO(make_tar([Entry("lib/.wh.victim"), Entry("lib/.wh..wh..opq")])), dest)
    assert_outside_untouched(outside)
    assert os.readlink(dest / "lib") == str(outside)


def test_regular_file_replaces_a_symlink_instead_of_writing_through(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    entries = [Entry("f", S, linkname=str(outside / "victim")), Entry("f", data=b"new")]
    apply_layer(io.BytesIO(make_tar(entries)), dest)
    assert not (dest / "f").is_symlink()
    assert (dest / "f").read_bytes() == b"new"
    assert_outside_untouched(outside)


def test_directory_entry_replaces_a_symlink(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    entries = [Entry("d", S, linkname=str(outside)), Entry("d", D, mode=0o755), Entry("d/x", data=b"1")]
    apply_layer(io.BytesIO(make_tar(entries)), dest)
    assert (dest / "d").is_dir() and not (dest / "d").is_symlink()
    assert (dest / "d/x").read_bytes() == b"1"
    assert_outside_untouched(outside)


@pytest.mark.parametrize(
    ("linkname", "problem"),
    [
        ("../outside/victim", "escapes the layer"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("nothere", "is not a file earlier in this layer"),
        ("sl/victim", "is not a file earlier in this layer"),
        ("dir", "is not a file earlier in this layer"),
    ],
)
def test_hardlink_escapes(sandbox: tuple[Path, Path], linkname: str, problem: str) -> None:
    dest, outside = sandbox
    entries = [
        Entry("sl", S, linkname=str(outside)),
        Entry("dir", D, mode=0o755),
        Entry("h", L, linkname=linkname),
    ]
    err = apply_refused(dest, make_tar(entries), problem)
    assert "'h'" in str(err)
    assert_outside_untouched(outside)
    assert os.stat(outside / "victim").st_nlink == 1


def test_hardlink_to_a_file_of_a_lower_layer_is_refused(sandbox: tuple[Path, Path]) -> None:
    dest, _ = sandbox
    apply_layer(io.BytesIO(make_tar([Entry("f", data=b"x")])), dest)
    apply_refused(dest, make_tar([Entry("h", L, linkname="f")]), "not a file earlier in this layer")


def test_hardlink_to_a_symlink_links_the_symlink_itself(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    entries = [Entry("s", S, linkname=str(outside / "victim")), Entry("h", L, linkname="s")]
    apply_layer(io.BytesIO(make_tar(entries)), dest)
    assert os.readlink(dest / "h") == str(outside / "victim")
    assert os.lstat(dest / "h").st_ino == os.lstat(dest / "s").st_ino
    assert os.stat(outside / "victim").st_nlink == 1


@pytest.mark.parametrize(
    ("kind", "major", "minor", "what"),
    [(tarfile.CHRTYPE, 1, 3, "character device 1:3"), (tarfile.BLKTYPE, 8, 0, "block device 8:0"),
     (tarfile.CHRTYPE, 0, 0, "character device 0:0")],
)
def test_device_nodes_are_refused(sandbox: tuple[Path, Path], kind: bytes, major: int, minor: int, what: str) -> None:
    dest, _ = sandbox
    data = make_tar([Entry("dev", D, mode=0o755), Entry("dev/node", kind, devmajor=major, devminor=minor)])
    err = apply_refused(dest, data, what)
    assert "'dev/node'" in str(err)
    assert not (dest / "dev/node").exists()


def test_device_nodes_can_be_skipped(sandbox: tuple[Path, Path]) -> None:
    dest, _ = sandbox
    data = make_tar([Entry("dev", D, mode=0o755), Entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
                     Entry("dev/ok", data=b"fine")])
    apply_layer(io.BytesIO(data), dest, devices="skip")
    assert sorted(os.listdir(dest / "dev")) == ["ok"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of devices needs root")
def test_device_nodes_are_made_as_docker_keeps_them(sandbox: tuple[Path, Path]) -> None:
    """``devices="make"`` (the layer store's unpack): character and block devices with their numbers,
    mode and owner; a node replaces a file of an earlier member; nothing is made through a symlink."""
    import stat

    dest, _ = sandbox
    data = make_tar([Entry("dev", D, mode=0o755), Entry("dev/null", data=b"was a file"),
                     Entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
                     Entry("dev/loop7", tarfile.BLKTYPE, devmajor=7, devminor=7, mode=0o660)])  # fmt: skip
    apply_layer(io.BytesIO(data), dest, whiteouts="overlay", devices="make")
    null, loop = os.lstat(dest / "dev/null"), os.lstat(dest / "dev/loop7")
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert stat.S_ISBLK(loop.st_mode) and (os.major(loop.st_rdev), os.minor(loop.st_rdev)) == (7, 7)
    assert (stat.S_IMODE(null.st_mode), stat.S_IMODE(loop.st_mode)) == (0o666, 0o660)


def test_whiteout_like_device_is_refused_in_an_overlay_lower(sandbox: tuple[Path, Path]) -> None:
    """A character device 0:0 in an overlay lower would hide what the layers below hold: refused."""
    dest, _ = sandbox
    data = make_tar([Entry("dev", D, mode=0o755), Entry("dev/x", tarfile.CHRTYPE, devmajor=0, devminor=0)])
    with pytest.raises(InvalidArchive, match="'dev/x': character device 0:0; it would be an overlay whiteout"):
        apply_layer(io.BytesIO(data), dest, whiteouts="overlay", devices="make")
    assert not (dest / "dev/x").exists()


def test_fifo_is_created(sandbox: tuple[Path, Path]) -> None:
    dest, _ = sandbox
    apply_layer(io.BytesIO(make_tar([Entry("p", tarfile.FIFOTYPE, mode=0o640)])), dest)
    st = os.lstat(dest / "p")
    assert (st.st_mode & 0o170000) == 0o010000 and (st.st_mode & 0o777) == 0o640


def test_overlay_xattrs_are_never_taken_from_a_tar(sandbox: tuple[Path, Path]) -> None:
    dest, _ = sandbox
    pax = {"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.user.ok": "yes",
           "SCHILY.xattr.trusted.overlay.opaque": "y"}
    apply_layer(io.BytesIO(make_tar([Entry("d", D, mode=0o755, pax=pax)])), dest)
    names = os.listxattr(dest / "d")
    assert "trusted.overlay.redirect" not in names and "trusted.overlay.opaque" not in names
    assert os.getxattr(dest / "d", "user.ok") == b"yes"


def test_file_below_a_file_is_refused(sandbox: tuple[Path, Path]) -> None:
    dest, _ = sandbox
    apply_refused(dest, make_tar([Entry("f", data=b"x"), Entry("f/g", data=b"y")]), "'f' is not a directory")


# --- damaged streams ----------------------------------------------------------------------------


@pytest.fixture
def good_tar() -> bytes:
    return make_tar([Entry("d", D, mode=0o755), Entry("d/big", data=os.urandom(100_000)), Entry("d/small", data=b"x")])


def test_truncated_inside_file_data(sandbox: tuple[Path, Path], good_tar: bytes) -> None:
    apply_refused(sandbox[0], good_tar[:50_000], "unexpected E|truncated")


def test_truncated_inside_a_header(sandbox: tuple[Path, Path], good_tar: bytes) -> None:
    idx = good_tar.index(b"d/small") + 100
    apply_refused(sandbox[0], good_tar[:idx], "truncated inside a header")


def test_truncated_at_a_member_boundary(sandbox: tuple[Path, Path], good_tar: bytes) -> None:
    idx = good_tar.index(b"d/small")
    apply_refused(sandbox[0], good_tar[:idx], "without an end-of-archive marker")


def test_garbage_header_after_first_member(sandbox: tuple[Path, Path], good_tar: bytes) -> None:
    idx = good_tar.index(b"d/small")
    bad = good_tar[:idx] + b"\xff" * 512 + good_tar[idx + 512 :]
    apply_refused(sandbox[0], bad, "invalid tar header")


def test_not_a_tar(sandbox: tuple[Path, Path]) -> None:
    apply_refused(sandbox[0], b"hello" * 200, "unsupported compression or not a tar archive")


def test_truncated_gzip_layer(sandbox: tuple[Path, Path], good_tar: bytes) -> None:
    apply_refused(sandbox[0], gzip.compress(good_tar)[:-20], "unexpected EOF: gzip stream is truncated")


def test_corrupt_gzip_layer(sandbox: tuple[Path, Path], good_tar: bytes) -> None:
    blob = bytearray(gzip.compress(good_tar))
    blob[-8] ^= 0xFF  # CRC32 of the trailer
    apply_refused(sandbox[0], bytes(blob), "invalid gzip data")


def test_unknown_compression_layer(sandbox: tuple[Path, Path]) -> None:
    apply_refused(sandbox[0], b"\x04\x22\x4d\x18" + bytes(1000), "unsupported compression: lz4")


def test_refusal_leaves_nothing_outside_and_only_partial_inside(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    entries = [Entry("ok", data=b"1"), Entry("../outside/victim", data=b"pwned")]
    apply_refused(dest, make_tar(entries), "escapes the layer")
    assert_outside_untouched(outside)
    assert list(snapshot(dest)) == ["ok"]
