"""A store on a real, small filesystem (tmpfs) that fills up: a container writing more than fits, a
commit and an export larger than the free space. Each fails clearly, leaves the store and the
container as they were, and everything works again once space is freed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_helpers import Strata, cleanup, runtime_missing

pytestmark = pytest.mark.runtime

MIB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if reason := runtime_missing():
        pytest.skip(reason)
    disk = tmp_path / "disk"
    disk.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {res.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _fill(path: Path, leave: int) -> None:
    """Allocate a file so that only ``leave`` bytes stay free on ``path``'s filesystem."""
    size = _free(path.parent) - leave
    with open(path, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, size)


def _tree(root: Path, *subdirs: str) -> list[str]:
    out = []
    for sub in subdirs:
        base = root / sub
        if base.exists():
            out += sorted(str(p.relative_to(root)) for p in base.rglob("*"))
    return out


def test_full_disk(small_disk: Path, busybox_tar: Path) -> None:
    s = Strata(small_disk / "root")
    try:
        _run_full_disk(s, small_disk, busybox_tar)
    finally:
        cleanup(s)


def _run_full_disk(s: Strata, disk: Path, busybox_tar: Path) -> None:
    s("import", "-c", 'CMD ["/bin/sh"]', str(busybox_tar), "bb:1")
    s("run", "--name", "writer", "bb:1", "sh", "-c", "head -c 1500000 /dev/urandom > /data; md5sum /data > /sum")
    assert s("diff", "writer").stdout == "A /data\nA /sum\n"
    images = s("images", "-q", "--no-trunc").stdout
    store_files = _tree(s.root, "blobs", "layers")
    cid = s("container", "inspect", "-f", "{{.Id}}", "writer").stdout.strip()

    reserve = disk / "reserve"  # freed later, so the store can be reached again once the disk is full
    _fill(reserve, leave=_free(disk) - 2 * MIB)
    ballast = disk / "ballast"
    _fill(ballast, leave=256 * 1024)

    # commit of a layer larger than the free space: a clear error, nothing half-written visible
    res = s("commit", "writer", "img:1", check=False)
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == f"Error: failed to commit container {cid[:12]}: no space left on device\n"
    assert s("images", "-q", "--no-trunc").stdout == images
    assert _tree(s.root, "blobs", "layers") == store_files
    assert _tree(s.root, "tmp") == []
    assert s("diff", "writer").stdout == "A /data\nA /sum\n"

    # export to the full filesystem: a clear error and no partial archive
    res = s("export", "-o", str(disk / "out.tar"), "writer", check=False)
    assert res.returncode == 1
    assert res.stderr == f"Error: failed to export container: write {disk / 'out.tar'}: no space left on device\n"
    assert sorted(p.name for p in disk.iterdir()) == ["ballast", "reserve", "root"]

    # a container writing more than fits: its own write fails, strata records its exit code
    ballast.unlink()
    res = s("run", "--name", "hog", "bb:1", "sh", "-c",
            "echo start; dd if=/dev/zero of=/hog bs=64k 2>/dev/null; echo dd=$?; "
            "i=0; while [ $i -lt 2000 ]; do echo log-line-$i; i=$((i+1)); done; exit 3", check=False)
    assert res.returncode == 3, res.stderr
    assert res.stdout.startswith("start\ndd=1\nlog-line-0\n") and res.stdout.endswith("log-line-1999\n")
    assert "Traceback" not in res.stderr
    assert _free(disk) < MIB  # the disk was full (what is free now, strata freed after the exit)

    # free space: the store works again, the records are right, and the commit now succeeds
    reserve.unlink()
    assert s("ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout.splitlines()[0].startswith("hog Exited (3)")
    # what fitted was logged, whole entries, the rest dropped: the log's lines are the container's lines in
    # order with some left out. Not always a prefix: the monitor may write even "start" only after dd filled
    # the disk (a loaded machine), and a later, shorter batch may fit in the log file's last page (tmpfs)
    logged = s("logs", "hog").stdout.splitlines(keepends=True)
    printed = iter(res.stdout.splitlines(keepends=True))
    assert all(line in printed for line in logged), logged
    assert len(logged) < len(res.stdout.splitlines())
    assert s("rm", "hog").stdout == "hog\n"
    image_id = s("commit", "writer", "img:1").stdout.strip()
    assert image_id.startswith("sha256:")
    out = s("run", "--rm", "img:1", "md5sum", "-c", "/sum").stdout
    assert out == "/data: OK\n"
    assert s("images", "-q", "--no-trunc").stdout.split() == [image_id, *images.split()]
