"""A name the directory listing showed as a regular file but that became something else before the
archiver opened it (a running container swapping its files) is never opened for reading: opening a
device node or a FIFO as root can act on it (a watchdog armed, a tape rewound, a FIFO's writer
released). It is archived as what it now is, as a fresh listing would have found it."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path

import pytest

from strata.archive import tarwriter, write_tar_from_dir


def _listed_as_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every name listed as a regular file: what a listing taken before a swap shows."""
    real = tarwriter._sorted_entries

    def entries(dir_fd: int) -> list[tuple[str, int]]:
        return [
            (name, tarwriter._FILE if name.startswith("swapped") else kind) for name, kind in real(dir_fd)
        ]

    monkeypatch.setattr(tarwriter, "_sorted_entries", entries)


def test_a_fifo_swapped_in_for_a_file_is_not_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a").write_bytes(b"a")
    fifo = root / "swapped-fifo"
    os.mkfifo(fifo)
    opened = threading.Event()

    def writer() -> None:  # its open returns only once someone opens the FIFO for reading
        fd = os.open(fifo, os.O_WRONLY)
        opened.set()
        os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    _listed_as_files(monkeypatch)
    buf = io.BytesIO()
    try:
        write_tar_from_dir(root, buf)
        released = opened.wait(0.5)
    finally:
        if not opened.is_set():
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # the writer let go
        thread.join(10)
    assert not released, "the archiver opened the FIFO for reading"
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        assert [(m.name, m.type) for m in tar.getmembers()] == [
            ("a", tarfile.REGTYPE),
            ("swapped-fifo", tarfile.FIFOTYPE),
        ]


def test_a_device_swapped_in_for_a_file_is_archived_as_a_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    try:
        os.mknod(root / "swapped-null", 0o600 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    _listed_as_files(monkeypatch)
    buf = io.BytesIO()
    write_tar_from_dir(root, buf, own_file=True)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        (member,) = tar.getmembers()
    assert (member.name, member.type, member.devmajor, member.devminor) == (
        "swapped-null",
        tarfile.CHRTYPE,
        1,
        3,
    )
