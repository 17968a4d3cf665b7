"""An upload's move into the blob store (``move_and_touch``): on S3 one server-side copy that also
sets the blob's time to now (a move and then a touch copied every pushed blob twice); elsewhere the
driver's move and touch. The time is what a running GC's grace period counts from."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from strata.server.storage import PathNotFound
from strata.server.storage.driver import StorageDriver
from strata.server.storage.filesystem import FilesystemDriver
from strata.server.storage.s3 import S3Driver

from .radosgw import session_radosgw

MiB = 1 << 20


def _s3() -> S3Driver:
    return S3Driver.from_parameters(session_radosgw().s3_params(rootdirectory=f"/m{secrets.token_hex(4)}",
                                                                multipartcopythresholdsize=5 * MiB))  # fmt: skip


def _aged(drv: StorageDriver, path: str, data: bytes) -> None:
    """``data`` at ``path`` with a time an hour ago."""
    drv.put_content(path, data)
    if isinstance(drv, S3Driver):
        key = drv._key(path)
        drv.bucket.copy(key, key, len(data), time.time() - 3600)
    else:
        real = drv.local_path(path)
        assert real is not None
        old = time.time() - 3600
        os.utime(real, (old, old))
    assert drv.stat(path).mtime < time.time() - 3000


@pytest.mark.parametrize("size", [1000, 7 * MiB])  # below and above the multipart copy threshold
def test_s3_move_and_touch_is_one_copy_with_a_fresh_time(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    drv = _s3()
    try:
        data = secrets.token_bytes(size)
        _aged(drv, "/up/data", data)
        copies: list[tuple[Any, ...]] = []
        real = drv.bucket.copy

        def counted(*a: Any) -> None:
            copies.append(a)
            real(*a)

        monkeypatch.setattr(drv.bucket, "copy", counted)
        before = time.time()
        drv.move_and_touch("/up/data", "/blobs/x/data")
        assert len(copies) == 1
        assert drv.get_content("/blobs/x/data") == data
        assert drv.stat("/blobs/x/data").mtime >= before - 1
        with pytest.raises(PathNotFound):
            drv.stat("/up/data")
        with pytest.raises(PathNotFound):
            drv.move_and_touch("/up/data", "/blobs/y/data")
    finally:
        drv.delete("/")


def test_other_drivers_move_then_touch(tmp_path: Path) -> None:
    drv = FilesystemDriver(str(tmp_path))
    _aged(drv, "/up/data", b"abc")
    before = time.time()
    drv.move_and_touch("/up/data", "/blobs/x/data")
    assert drv.get_content("/blobs/x/data") == b"abc"
    assert drv.stat("/blobs/x/data").mtime >= before - 1
    with pytest.raises(PathNotFound):
        drv.stat("/up/data")
