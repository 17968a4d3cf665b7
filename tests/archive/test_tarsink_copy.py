"""Layer tars written into a file of strata's own (``own_file``: large files copied in the kernel and
hashed on a thread from the written file, writeback started early) hold exactly the bytes, and report
exactly the digest, of the plain path's; a file shorter than its header says is refused; the hashing
thread never outlives the write."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import threading
from pathlib import Path

import pytest

from strata.archive import write_tar_from_dir
from strata.archive.tarsink import KERNEL_COPY_MIN, TarSink
from strata.errors import StoreError


def _tree(root: Path) -> None:
    (root / "d").mkdir(parents=True)
    sizes = [0, 1, 513, KERNEL_COPY_MIN - 1, KERNEL_COPY_MIN, KERNEL_COPY_MIN + 1, 3 * (1 << 20) + 7, 5000]
    for i, size in enumerate(sizes):
        (root / "d" / f"f{i}").write_bytes(os.urandom(size))
    os.link(root / "d" / "f6", root / "hard")
    os.symlink("d/f6", root / "link")


def _plain(root: Path) -> tuple[bytes, str]:
    buf = io.BytesIO()
    info = write_tar_from_dir(root, buf, from_overlay_upper=True, own_file=True)  # BytesIO: no descriptor
    return buf.getvalue(), str(info.diff_id)


@pytest.mark.parametrize(("writeback", "mode"), [(False, "wb"), (True, "wb"), (True, "w+b")])
def test_own_file_writes_the_plain_bytes(tmp_path: Path, writeback: bool, mode: str) -> None:
    root = tmp_path / "tree"
    _tree(root)
    want, want_id = _plain(root)
    out = tmp_path / "layer.tar"
    with open(out, mode) as f:  # write-only: hashed through a descriptor reopened; read-write: its own
        f.write(b"head")  # the tar starts at the stream's position
        info = write_tar_from_dir(root, f, from_overlay_upper=True, own_file=True, writeback=writeback)
        assert f.tell() == 4 + len(want)  # the stream is left at the tar's end
        f.write(b"tail")
    data = out.read_bytes()
    assert data == b"head" + want + b"tail"
    assert str(info.diff_id) == want_id == "sha256:" + hashlib.sha256(want).hexdigest()
    assert info.size == info.compressed_size == len(want) and info.digest == info.diff_id
    assert not [t for t in threading.enumerate() if t.name == "tar-hash"]


def test_a_source_on_another_filesystem_is_copied_through_memory(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's tmp dir")
    root = shm / f"strata-tarsink-{os.getpid()}"
    try:
        _tree(root)
        want, want_id = _plain(root)
        with open(tmp_path / "layer.tar", "wb") as f:
            info = write_tar_from_dir(root, f, from_overlay_upper=True, own_file=True, writeback=True)
        assert (tmp_path / "layer.tar").read_bytes() == want and str(info.diff_id) == want_id
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def test_a_file_shorter_than_its_header_is_refused_and_the_thread_ends(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"x" * (2 * KERNEL_COPY_MIN))
    with open(tmp_path / "out", "wb") as f:
        f.flush()
        sink = TarSink(f, f.fileno(), writeback=True)
        fd = os.open(src, os.O_RDONLY)
        try:
            sink.copy_file(fd, KERNEL_COPY_MIN, "first")  # the hashing thread starts
            assert [t for t in threading.enumerate() if t.name == "tar-hash"]
            with pytest.raises(StoreError, match="second: file shrank while it was being archived"):
                sink.copy_file(fd, 2 * KERNEL_COPY_MIN, "second")  # only half of it is left
        finally:
            os.close(fd)
            sink.abort()
    assert not [t for t in threading.enumerate() if t.name == "tar-hash"]


def test_writeback_starts_over_the_whole_tar_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from strata.archive import tarsink

    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(tarsink, "_sync_file_range", lambda: lambda fd, off, n, flags: calls.append((fd, off, n)) or 0)
    root = tmp_path / "small"
    root.mkdir()
    for i in range(100):  # 10 MB of files below the kernel copy's size: written in batches
        (root / f"f{i:03}").write_bytes(os.urandom(100_000))
    (root / "zbig").write_bytes(os.urandom(KERNEL_COPY_MIN * 2))  # one copied in the kernel, last
    want, _ = _plain(root)
    with open(tmp_path / "layer.tar", "wb") as f:
        write_tar_from_dir(root, f, own_file=True, writeback=True)
        out_fd = f.fileno()
    assert (tmp_path / "layer.tar").read_bytes() == want
    ranges = [(off, n) for fd, off, n in calls if fd == out_fd]
    assert len(ranges) >= 2 and ranges[0][0] == 0  # started before the big file, while the tar was written
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(ranges))  # contiguous, in order
    assert ranges[-1][0] + ranges[-1][1] == len(want)  # up to the tar's end
    assert any(fd != out_fd and (off, n) == (0, 0) for fd, off, n in calls)  # the big source file's own
