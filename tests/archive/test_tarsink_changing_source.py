"""A large file a running container rewrites, grows and truncates while it is archived into a file of
strata's own (kernel copy, hashed on a thread from what was written): each run either ends with a
StoreError (the file shrank under its header's size) or with a digest equal to the sha256 of the
bytes written; it never hangs, and the hashing thread never outlives the write."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from strata.archive import write_tar_from_dir
from strata.archive.tarsink import KERNEL_COPY_MIN
from strata.errors import StoreError

pytestmark = pytest.mark.timeout(120)


def _churn(path: Path, stop: threading.Event) -> None:
    size = 8 * KERNEL_COPY_MIN
    n = 0
    while not stop.is_set():
        n += 1
        fd = os.open(path, os.O_WRONLY)
        try:
            if n % 3 == 0:
                os.ftruncate(fd, size // (1 + n % 5))
            os.pwrite(fd, bytes([n % 251]) * (1 << 16), (n * 7919 * 4096) % size)
        finally:
            os.close(fd)


def test_a_file_changing_while_copied_gives_its_written_bytes_digest(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    big = root / "big"
    big.write_bytes(os.urandom(8 * KERNEL_COPY_MIN))
    (root / "small").write_bytes(b"s" * 100)
    stop = threading.Event()
    churner = threading.Thread(target=_churn, args=(big, stop), daemon=True)
    churner.start()
    outcomes = set()
    try:
        for i in range(300):  # until both outcomes were met
            if len(outcomes) == 2:
                break
            out = tmp_path / f"out{i}.tar"
            with open(out, "wb") as f:
                try:
                    info = write_tar_from_dir(root, f, own_file=True, writeback=i % 2 == 0)
                except StoreError as e:
                    assert "shrank" in str(e)
                    outcomes.add("shrank")
                    continue
                written = f.tell()
            data = out.read_bytes()
            assert written == len(data) == info.size
            assert str(info.diff_id) == "sha256:" + hashlib.sha256(data).hexdigest()
            outcomes.add("ok")
            out.unlink()
    finally:
        stop.set()
        churner.join(10)
    assert "ok" in outcomes, outcomes
    assert not [t for t in threading.enumerate() if t.name == "tar-hash"]
