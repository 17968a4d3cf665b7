"""A step's overlay upper dir adopted as its unpacked layer must be exactly what unpacking the stored
tar gives: names, types, modes, owners, devices, content, link targets, hard-link groups, xattrs
(trusted ones too), whiteouts, opaque marks and times. The changes are made through a real kernel
overlay mount, as a step container's are; the comparison is with a fresh unpack of the stored blob."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import struct
from pathlib import Path
from typing import Any

import pytest
from build_helpers import Strata

from strata.archive import apply_layer
from strata.build.adopt import adopt_upper
from strata.build.layerstore import store_layer
from strata.container.rootfs import mount_overlay, umount
from strata.engine import Engine

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlay mounts need root")

_CAP_NET_BIND = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)  # VFS_CAP_REVISION_2, effective


def _tree(root: Path) -> dict[str, Any]:
    """Everything of a tree that a layer is (root's own times aside); each entry stat'ed before it is
    read (reading a directory or file moves its atime)."""
    out: dict[str, Any] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    root_st = os.lstat(root)
    out[""] = ("root", stat.S_IMODE(root_st.st_mode), root_st.st_uid, root_st.st_gid, _xattrs(str(root)))
    _walk(root, "", out, inodes)
    out["links"] = sorted(sorted(names) for names in inodes.values() if len(names) > 1)
    return out


def _walk(path: Path, rel: str, out: dict[str, Any], inodes: dict[tuple[int, int], list[str]]) -> None:
    stats = {name: os.lstat(path / name) for name in os.listdir(path)}
    for name, st in sorted(stats.items()):
        sub, child = f"{rel}/{name}", path / name
        kind = stat.S_IFMT(st.st_mode)
        whiteout = kind == stat.S_IFCHR and st.st_rdev == 0
        times = None if whiteout else (st.st_mtime_ns, st.st_atime_ns)  # the unpack makes them "now"
        entry = [kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_rdev, times, _xattrs(str(child))]
        if not whiteout and kind != stat.S_IFDIR:
            entry.append(st.st_nlink)
            inodes.setdefault((st.st_dev, st.st_ino), []).append(sub)
        if kind == stat.S_IFREG:
            entry.append(hashlib.sha256(child.read_bytes()).hexdigest())
        elif kind == stat.S_IFLNK:
            entry.append(os.readlink(child))
        out[sub] = entry
        if kind == stat.S_IFDIR:
            _walk(child, sub, out, inodes)


def _xattrs(path: str) -> dict[str, bytes]:
    return {k: os.getxattr(path, k, follow_symlinks=False) for k in sorted(os.listxattr(path, follow_symlinks=False))}


def _lower(path: Path) -> None:
    """An image layer: files, a directory to delete, one to make opaque, a file to copy up."""
    (path / "keep").mkdir(parents=True)
    (path / "keep" / "old.txt").write_text("old\n")
    (path / "keep" / "gone.txt").write_text("to delete\n")
    (path / "opq").mkdir()
    (path / "opq" / "lower.txt").write_text("hidden by the opaque dir\n")
    (path / "dir-gone" / "deep").mkdir(parents=True)
    (path / "copyup.bin").write_bytes(b"\0" * 5000)
    (path / "linked").write_text("a hard-linked lower file\n")
    os.link(path / "linked", path / "linked2")


def _change(merged: Path) -> None:
    """What a step does: every kind of entry and change a layer can hold."""
    (merged / "new" / "sub").mkdir(parents=True)
    (merged / "new" / "sub" / "file").write_text("new content\n")
    os.chmod(merged / "new" / "sub", 0o2750)
    suid = merged / "new" / "suid"
    suid.write_bytes(b"#!/bin/sh\n")
    os.chmod(suid, 0o4755)
    os.link(suid, merged / "new" / "suid-link")
    os.symlink("../keep/old.txt", merged / "new" / "symlink")
    os.symlink("/nowhere", merged / "dangling")
    os.unlink(merged / "keep" / "gone.txt")
    shutil.rmtree(merged / "dir-gone")
    shutil.rmtree(merged / "opq")
    (merged / "opq").mkdir()
    (merged / "opq" / "upper.txt").write_text("only this\n")
    os.chmod(merged / "copyup.bin", 0o600)  # a copy-up: the kernel marks it (trusted.overlay.*)
    os.chown(merged / "linked", 1000, 1000)  # a copy-up of a hard-linked lower file
    (merged / "owned").write_text("someone's\n")
    os.chown(merged / "owned", 1234, 5678)
    os.setxattr(merged / "owned", "user.note", b"kept")
    os.setxattr(merged / "new", "user.dir-note", b"kept too")
    os.setxattr(merged / "new" / "suid", "security.capability", _CAP_NET_BIND)
    os.mkfifo(merged / "fifo", 0o640)
    os.mknod(merged / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.utime(merged / "owned", ns=(1_700_000_000_123_456_789, 1_600_000_000_987_654_321))
    with socket.socket(socket.AF_UNIX) as s:  # never in a tar
        s.bind(str(merged / "new" / "sock"))
    os.chmod(merged, 0o700)  # the root: no member of a layer tar


def _step(tmp_path: Path, change: Any) -> tuple[Engine, Path, Path]:
    engine = Engine.open(tmp_path / "root")
    cdir = tmp_path / "root" / "containers" / "c1"
    lower, upper, work, merged = (cdir / n for n in ("lower", "upper", "work", "merged"))
    for d in (upper, work, merged):
        d.mkdir(parents=True)
    _lower(lower)
    mount_overlay([lower], upper, work, merged)
    try:
        change(merged)
    finally:
        umount(str(merged))
    mount_overlay([lower], upper, work, merged)  # mounted still when the step commits
    return engine, cdir, upper


def _fresh_unpack(engine: Engine, blob: Path, dest: Path) -> Path:
    with open(blob, "rb") as f:
        apply_layer(f, dest, whiteouts="overlay", devices="make", overlay_xattr_prefix="trusted.overlay.")
    return dest


def test_adopted_upper_is_exactly_the_unpacked_tar(tmp_path: Path) -> None:
    engine, cdir, upper = _step(tmp_path, _change)
    try:
        with engine.writing():
            layer = store_layer(engine, upper)
            assert adopt_upper(engine, cdir, "overlay", layer.diff_id)
        adopted = engine.store.layer_dir(layer.diff_id)
        assert adopted.is_dir() and not upper.exists()
        assert not os.path.ismount(cdir / "merged")
        fresh = _fresh_unpack(engine, engine.store.blob_path(layer.diff_id), tmp_path / "fresh")
        got, want = _tree(adopted), _tree(fresh)
        assert got == want
        # the case covers what it claims (a change that is not in the tree would pass unnoticed)
        assert os.getxattr(adopted / "opq", "trusted.overlay.opaque") == b"y"
        assert stat.S_ISCHR(os.lstat(adopted / "keep" / "gone.txt").st_mode)
        assert stat.S_ISCHR(os.lstat(adopted / "dir-gone").st_mode)
        assert not (adopted / "new" / "sock").exists()
        assert os.lstat(adopted / "new" / "suid").st_mode & stat.S_ISUID
        assert ["/new/suid", "/new/suid-link"] in got["links"]
        assert os.getxattr(adopted / "new" / "suid", "security.capability") == _CAP_NET_BIND
        assert os.lstat(adopted / "owned").st_mtime_ns == 1_600_000_000_000_000_000
        assert engine.unpacked_layer(layer.diff_id, layer.digest) == adopted  # no second unpack
    finally:
        engine.close()


def test_adoption_refused_for_a_name_the_tar_reads_as_a_whiteout(tmp_path: Path) -> None:
    def change(merged: Path) -> None:
        (merged / "keep" / ".wh.old.txt").write_text("an ordinary file in the container\n")

    engine, cdir, upper = _step(tmp_path, change)
    try:
        with engine.writing():
            layer = store_layer(engine, upper)
            assert not adopt_upper(engine, cdir, "overlay", layer.diff_id)
        assert not engine.store.layer_dir(layer.diff_id).exists()
        unpacked = engine.unpacked_layer(layer.diff_id, layer.digest)  # the unpack as before
        assert stat.S_ISCHR(os.lstat(unpacked / "keep" / "old.txt").st_mode)
    finally:
        engine.close()


@pytest.mark.parametrize("case", ["chattr", "xattr-with-equals"])
def test_adoption_refused_for_what_the_tar_cannot_carry(tmp_path: Path, case: str) -> None:
    """An inode flag a step set (``chattr +A``) and an xattr name with ``=`` (the PAX record splits at
    the first ``=``) are not in what the tar unpacks to: the layer is unpacked, not adopted."""
    import fcntl

    def change(merged: Path) -> None:
        target = merged / "keep" / "flagged"
        target.write_text("x\n")
        if case == "chattr":
            fd = os.open(target, os.O_RDONLY)
            try:
                buf = bytearray(8)
                fcntl.ioctl(fd, 0x80086601, buf)  # FS_IOC_GETFLAGS
                flags = int.from_bytes(buf[:4], "little") | 0x80  # FS_NOATIME_FL (chattr +A)
                fcntl.ioctl(fd, 0x40086602, bytearray(flags.to_bytes(4, "little") + bytes(4)))  # SETFLAGS
            finally:
                os.close(fd)
        else:
            os.setxattr(target, "user.a=b", b"value")

    engine, cdir, upper = _step(tmp_path, change)
    try:
        with engine.writing():
            layer = store_layer(engine, upper)
            assert not adopt_upper(engine, cdir, "overlay", layer.diff_id)
        assert not engine.store.layer_dir(layer.diff_id).exists()
        unpacked = engine.unpacked_layer(layer.diff_id, layer.digest)  # the unpack as before
        assert (unpacked / "keep" / "flagged").read_text() == "x\n"
    finally:
        umount(str(cdir / "merged"))
        engine.close()


def test_adoption_refused_for_vfs_and_fuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, cdir, upper = _step(tmp_path, lambda merged: (merged / "f").write_text("x"))
    try:
        with engine.writing():
            layer = store_layer(engine, upper)
            assert not adopt_upper(engine, cdir, "vfs", layer.diff_id)
            monkeypatch.setenv("STRATA_OVERLAY_MOUNT_PROGRAM", "fuse-overlayfs")
            assert not adopt_upper(engine, cdir, "overlay", layer.diff_id)
        assert upper.is_dir() and not engine.store.layer_dir(layer.diff_id).exists()
    finally:
        umount(str(cdir / "merged"))
        engine.close()


def test_build_steps_adopt_their_layers(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    """A build's RUN and COPY layers are adopted, each exactly its blob unpacked; the next step sees them."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "data.txt").write_text("from the context\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {busybox}\n"
        "RUN mkdir -p /a/b && echo one > /a/b/f && ln /a/b/f /a/hl && ln -s b/f /a/sl && chmod 4755 /a/b/f"
        " && rm -rf /etc/network /bin/vi && touch -d @1700000000 /a/t\n"
        "COPY data.txt /a/\n"
        "RUN rm -rf /a/b && mkdir /a/b && echo two > /a/b/g && cat /a/hl /a/data.txt > /a/out\n"
    )
    strata("build", "-q", "-t", "adopt:test", str(ctx))
    out = strata("run", "--rm", "adopt:test", "cat", "/a/out").stdout
    assert out == "one\nfrom the context\n"
    engine = Engine.open(root)
    try:
        layers = engine.meta.image_layers(engine.resolve_image("adopt:test"))
        assert len(layers) == 4  # busybox + RUN + COPY + RUN
        for n, (diff_id, blob) in enumerate(layers[1:]):
            adopted = engine.store.layer_dir(diff_id)
            assert adopted.is_dir()
            fresh = _fresh_unpack(engine, engine.store.blob_path(blob), tmp_path / f"fresh{n}")
            assert _tree(adopted) == _tree(fresh)
        last = engine.store.layer_dir(layers[3][0])
        assert os.getxattr(last / "a" / "b", "trusted.overlay.opaque") == b"y"
    finally:
        engine.close()
