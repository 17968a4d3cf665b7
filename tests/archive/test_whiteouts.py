"""OCI whiteouts: applied as deletions (flat), stored for overlayfs (overlay, checked by mounting), and
made from an overlayfs upper dir by the writer (commit)."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.helpers import Entry, make_tar, members, snapshot
from strata.archive import apply_layer, write_tar_from_dir

D, R, S = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE

LOWER = [
    Entry("a", D, mode=0o755),
    Entry("a/keep", data=b"keep"),
    Entry("a/gone", data=b"gone"),
    Entry("b", D, mode=0o755),
    Entry("b/x", data=b"x"),
    Entry("b/sub", D, mode=0o700),
    Entry("b/sub/y", data=b"y"),
    Entry("c", D, mode=0o755),
    Entry("c/old1", data=b"old"),
    Entry("c/old2", D, mode=0o755),
    Entry("c/old2/z", data=b"z"),
    Entry("f1", data=b"f1"),
    Entry("f2", S, linkname="a/keep"),
    Entry("e", data=b"lower e"),
]
UPPER = [
    Entry(".wh.b"),
    Entry(".wh.e"),  # the same layer also has "e": the whiteout hides the lower one only
    Entry(".wh.f1"),
    Entry("a", D, mode=0o750, mtime=1_700_000_000),
    Entry("a/.wh.gone"),
    Entry("c", D, mode=0o755, mtime=1_700_000_001),
    Entry("c/.wh..wh..opq"),
    Entry("c/new", data=b"new"),
    Entry("c/old2", D, mode=0o711, mtime=1_700_000_002),
    Entry("c/old2/fresh", data=b"fresh"),
    Entry("e", data=b"upper e"),
    Entry("x/.wh..wh.plnk"),  # AUFS bookkeeping: ignored
]
EXPECTED = {
    "a": 0o750, "a/keep": b"keep", "c": 0o755, "c/new": b"new", "c/old2": 0o711,
    "c/old2/fresh": b"fresh", "e": b"upper e", "f2": "a/keep",
}


def contents(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for rel, (kind, mode, *_rest) in snapshot(root).items():
        p = root / rel
        if kind == stat.S_IFDIR:
            out[rel] = mode
        elif kind == stat.S_IFLNK:
            out[rel] = os.readlink(p)
        elif kind == stat.S_IFREG:
            out[rel] = p.read_bytes()
        else:
            out[rel] = ("special", kind)
    return out


def apply(data: bytes, dest: Path, mode: str) -> None:
    apply_layer(io.BytesIO(data), dest, whiteouts=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize("upper_order", ["as-written", "reversed"])
def test_flat_mode_applies_deletions(tmp_path: Path, upper_order: str) -> None:
    upper = UPPER if upper_order == "as-written" else list(reversed(UPPER))
    if upper_order == "reversed":  # parents must still come before children
        upper = sorted(upper, key=lambda e: e.name.count("/"))
    apply(make_tar(LOWER), tmp_path, "oci")
    apply(make_tar(upper), tmp_path, "flat")
    got = contents(tmp_path)
    assert got == EXPECTED


def test_flat_whiteout_of_missing_path_is_a_no_op(tmp_path: Path) -> None:
    apply(make_tar([Entry("d/.wh.nothing"), Entry(".wh.nope")]), tmp_path, "oci")
    assert os.listdir(tmp_path) == []


def test_none_mode_keeps_whiteout_names_as_files(tmp_path: Path) -> None:
    apply(make_tar([Entry(".wh.x", data=b"1"), Entry("d/.wh..wh..opq", data=b"2")]), tmp_path, "none")
    assert (tmp_path / ".wh.x").read_bytes() == b"1"
    assert (tmp_path / "d/.wh..wh..opq").read_bytes() == b"2"


@pytest.mark.parametrize("name", ["a/.wh.", "a/.wh..", "a/.wh..."])
def test_invalid_whiteout_names(tmp_path: Path, name: str) -> None:
    from strata.errors import InvalidArchive

    with pytest.raises(InvalidArchive, match=r"invalid whiteout name|escapes"):
        apply(make_tar([Entry(name)]), tmp_path, "oci")


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts need root")


@needs_root
def test_overlay_mode_stores_overlayfs_whiteouts(tmp_path: Path) -> None:
    apply(make_tar(UPPER), tmp_path, "overlay")
    for rel in ("b", "f1", "a/gone"):
        st = os.lstat(tmp_path / rel)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, rel
    assert os.getxattr(tmp_path / "c", "trusted.overlay.opaque") == b"y"
    assert (tmp_path / "e").read_bytes() == b"upper e"
    assert not (tmp_path / "x/.wh..wh.plnk").exists()
    assert not any(".wh." in p for p in snapshot(tmp_path))


@needs_root
def test_overlay_mode_dir_replacing_a_whiteout_is_opaque(tmp_path: Path) -> None:
    apply(make_tar([Entry(".wh.d"), Entry("d", D, mode=0o755), Entry("d/f", data=b"1")]), tmp_path, "overlay")
    assert stat.S_ISDIR(os.lstat(tmp_path / "d").st_mode)
    assert os.getxattr(tmp_path / "d", "trusted.overlay.opaque") == b"y"


def _can_mount_overlay(tmp: Path) -> bool:
    if os.geteuid() != 0:
        return False
    dirs = [tmp / n for n in ("l", "u", "w", "m")]
    for d in dirs:
        d.mkdir()
    opts = f"lowerdir={dirs[0]},upperdir={dirs[1]},workdir={dirs[2]}"
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(dirs[3])], capture_output=True)
    if r.returncode != 0:
        return False
    subprocess.run(["umount", str(dirs[3])], check=True)
    return True


@pytest.fixture
def overlay_ok(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    if not _can_mount_overlay(probe):
        pytest.skip("cannot mount overlayfs here (needs root and overlay support)")


@contextlib.contextmanager
def overlay(merged: Path, lowers: list[Path], upper: Path | None = None, work: Path | None = None) -> Iterator[Path]:
    merged.mkdir(exist_ok=True)
    opts = "lowerdir=" + ":".join(str(p) for p in lowers)
    if upper is not None and work is not None:
        opts += f",upperdir={upper},workdir={work},redirect_dir=off,metacopy=off,index=off"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_overlay_layers_mount_to_the_flat_result(tmp_path: Path, overlay_ok: None) -> None:
    l1, l2, flat = tmp_path / "l1", tmp_path / "l2", tmp_path / "flat"
    apply(make_tar(LOWER), l1, "overlay")
    apply(make_tar(UPPER), l2, "overlay")
    apply(make_tar(LOWER), flat, "oci")
    apply(make_tar(UPPER), flat, "oci")
    with overlay(tmp_path / "merged", [l2, l1]) as merged:
        assert contents(merged) == EXPECTED
        assert snapshot(merged) == snapshot(flat)


def test_commit_of_an_upper_dir_reproduces_the_container_view(tmp_path: Path, overlay_ok: None) -> None:
    lower = tmp_path / "lower"
    apply(make_tar(LOWER), lower, "overlay")
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    with overlay(tmp_path / "merged", [lower], upper, work) as m:
        os.unlink(m / "f1")
        os.unlink(m / "a/gone")
        subprocess.run(["rm", "-rf", str(m / "b"), str(m / "c")], check=True)
        (m / "c").mkdir()
        (m / "c/new").write_text("new")
        (m / "a/keep").write_text("changed")
        (m / "added").write_text("12 bytes!!!\n")
        os.symlink("added", m / "link")
        view = snapshot(m)
    out = io.BytesIO()
    info = write_tar_from_dir(upper, out, from_overlay_upper=True)
    names = {mem.name for mem in members(out.getvalue())}
    assert {".wh.b", ".wh.f1", "a/.wh.gone", "c/.wh..wh..opq", "c/new", "added", "a/keep"} <= names
    assert not any(n in names for n in ("e", "f2", "a/gone", "b"))
    assert info.size < 20 * 1024  # the layer holds the changes only
    flat = tmp_path / "flat"
    apply(make_tar(LOWER), flat, "oci")
    apply(out.getvalue(), flat, "oci")
    assert snapshot(flat) == view
    # the same layer unpacked for overlay and stacked gives the same view again
    l2 = tmp_path / "l2"
    apply(out.getvalue(), l2, "overlay")
    with overlay(tmp_path / "merged2", [l2, lower]) as m2:
        assert snapshot(m2) == view


def test_upper_whiteouts_are_plain_devices_without_the_flag(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(tmp_path / "wh", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    out = io.BytesIO()
    write_tar_from_dir(tmp_path, out)
    (m,) = members(out.getvalue())
    assert m.ischr() and m.name == "wh"
    out = io.BytesIO()
    write_tar_from_dir(tmp_path, out, from_overlay_upper=True)
    (m,) = members(out.getvalue())
    assert m.isreg() and m.name == ".wh.wh" and m.size == 0
