"""One conformance suite for every storage driver (filesystem, in-memory, S3 on a real radosgw)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.s3.radosgw import session_radosgw
from strata.server.storage import (
    FilesystemDriver,
    InMemoryDriver,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageDriver,
)


@pytest.fixture(params=["filesystem", "inmemory", pytest.param("s3", marks=pytest.mark.peers)])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageDriver]:
    if request.param == "filesystem":
        yield FilesystemDriver(str(tmp_path / "root"))
    elif request.param == "inmemory":
        yield InMemoryDriver()
    else:
        from strata.server.storage.s3 import S3Driver

        rgw = session_radosgw()
        # a fresh rootdirectory per test: isolation, and the key prefixing is exercised too
        s3 = S3Driver.from_parameters(rgw.s3_params(rootdirectory=f"/t{secrets.token_hex(4)}", chunksize=5 << 20))
        yield s3
        try:
            s3.delete("/")
        except PathNotFound:
            pass


def test_put_get_roundtrip(driver: StorageDriver) -> None:
    driver.put_content("/a/b/c", b"hello")
    assert driver.get_content("/a/b/c") == b"hello"
    driver.put_content("/a/b/c", b"bye")
    assert driver.get_content("/a/b/c") == b"bye"
    assert driver.stat("/a/b/c").size == 3
    assert not driver.stat("/a/b/c").is_dir
    assert driver.stat("/a/b").is_dir


def test_missing_paths_raise_path_not_found(driver: StorageDriver) -> None:
    for call in (
        lambda: driver.get_content("/nope"),
        lambda: driver.stat("/nope"),
        lambda: driver.list("/nope"),
        lambda: driver.reader("/nope"),
        lambda: driver.delete("/nope"),
        lambda: driver.move("/nope", "/other"),
        lambda: driver.writer("/nope", append=True),
        lambda: driver.touch("/nope"),
    ):
        with pytest.raises(PathNotFound):
            call()


@pytest.mark.parametrize("bad", ["", "a", "/a/../b", "/a/./b", "/a//b", "/a/b/", "/a b", "/ä", "/a\\b"])
def test_invalid_paths_are_refused(driver: StorageDriver, bad: str) -> None:
    with pytest.raises(InvalidPath):
        driver.put_content(bad, b"x")
    with pytest.raises(InvalidPath):
        driver.get_content(bad)


def test_reader_at_offset(driver: StorageDriver) -> None:
    data = bytes(range(256)) * 1000
    driver.put_content("/blob", data)
    with driver.reader("/blob", 1000) as r:
        assert r.read() == data[1000:]
    with driver.reader("/blob", len(data)) as r:
        assert r.read() == b""
    with pytest.raises(InvalidOffset):
        driver.reader("/blob", len(data) + 1)


def test_writer_append_commit_cancel(driver: StorageDriver) -> None:
    w = driver.writer("/up/data")
    w.write(b"abc")
    w.write(b"def")
    assert w.size == 6
    w.commit()
    w.close()
    w = driver.writer("/up/data", append=True)
    assert w.size == 6
    w.write(b"ghi")
    w.truncate(7)
    w.write(b"X")
    w.commit()
    w.close()
    assert driver.get_content("/up/data") == b"abcdefgX"
    w = driver.writer("/up/other")
    w.write(b"zzz")
    w.cancel()
    with pytest.raises(PathNotFound):
        driver.stat("/up/other")


def test_list_walk_and_nested_delete(driver: StorageDriver) -> None:
    for p in ("/r/a/1", "/r/a/2", "/r/b/x/3", "/r/c"):
        driver.put_content(p, p.encode())
    assert sorted(driver.list("/r")) == ["/r/a", "/r/b", "/r/c"]
    walked = [i.path for i in driver.walk("/r")]
    assert walked == ["/r/a", "/r/a/1", "/r/a/2", "/r/b", "/r/b/x", "/r/b/x/3", "/r/c"]
    driver.delete("/r/b")
    assert sorted(driver.list("/r")) == ["/r/a", "/r/c"]
    with pytest.raises(PathNotFound):
        driver.get_content("/r/b/x/3")


def test_move_replaces_atomically(driver: StorageDriver) -> None:
    driver.put_content("/src/data", b"new")
    driver.put_content("/dst/data", b"old")
    driver.move("/src/data", "/dst/data")
    assert driver.get_content("/dst/data") == b"new"
    with pytest.raises(PathNotFound):
        driver.get_content("/src/data")
    driver.put_content("/src2", b"x")
    driver.move("/src2", "/deep/new/place")
    assert driver.get_content("/deep/new/place") == b"x"


def test_touch_updates_mtime(driver: StorageDriver) -> None:
    driver.put_content("/t", b"x")
    before = driver.stat("/t").mtime
    import time

    time.sleep(0.02)
    driver.touch("/t")
    assert driver.stat("/t").mtime > before


def test_large_streamed_write(driver: StorageDriver) -> None:
    chunk = b"\x01" * (1 << 20)
    w = driver.writer("/big")
    for _ in range(8):
        w.write(chunk)
    w.commit()
    w.close()
    assert driver.stat("/big").size == 8 << 20
