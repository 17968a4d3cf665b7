"""Garbage collection against work in flight: the files a load is staging or an unpack is writing are
never collected under it, a writer reusing a blob keeps it, and what a killed writer published before
its transaction is swept by the next collection."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

from corehelpers import Strata  # type: ignore[import-not-found]

from strata.digest import Digest
from strata.engine import Engine
from strata.errors import ImageNotFound


def _many_files_tar(path: Path, count: int = 4000) -> None:
    """A layer that takes a while to unpack: many small files."""
    with tarfile.open(path, "w") as tar:
        for i in range(count):
            data = os.urandom(64)
            info = tarfile.TarInfo(f"d{i % 40}/f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_gc_spares_a_load_in_progress(strata: Strata, rootfs_tar: Path, root: Path, tmp_path: Path) -> None:
    strata("import", "-m", "victim", str(rootfs_tar), "victim:1")
    layer = tmp_path / "many.tar"
    _many_files_tar(layer)
    strata("import", str(layer), "keep:1")
    archive = tmp_path / "keep.tar"
    strata("save", "-o", str(archive), "keep:1")
    strata("rmi", "keep:1")
    data = archive.read_bytes()
    env = dict(os.environ, STRATA_ROOT=str(root))
    load = subprocess.Popen([sys.executable, "-m", "strata", "load"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert load.stdin is not None
    load.stdin.write(data[: len(data) // 2])
    load.stdin.flush()
    deadline = time.monotonic() + 60
    while not any(p.name.startswith("load-") and any(p.iterdir()) for p in (root / "tmp").iterdir()):
        assert time.monotonic() < deadline, "the load never started staging"
        time.sleep(0.02)
    # an rmi that deletes an image runs a collection while the load is half way through its staging
    assert strata("rmi", "victim:1").stdout.startswith("Untagged: victim:1\nDeleted: ")
    out, err = load.communicate(data[len(data) // 2 :], timeout=60)
    assert (load.returncode, out, err) == (0, b"Loaded image: keep:1\n", b"")
    assert strata("images", "--format", "{{.Repository}}:{{.Tag}}").stdout == "keep:1\n"
    strata("rmi", "keep:1")  # nothing in flight now: everything goes, the victim's leftovers too
    assert not list((root / "blobs" / "sha256").iterdir())
    assert not [p for p in (root / "layers").iterdir()]
    assert not list((root / "tmp").iterdir())


def test_gc_spares_an_unpack_in_progress(strata: Strata, root: Path, tmp_path: Path) -> None:
    layer = tmp_path / "many.tar"
    _many_files_tar(layer)
    image_id = Digest.parse(strata("import", str(layer), "unpack:1").stdout.strip())
    unpacker, collector = Engine.open(root), Engine.open(root)
    errors: list[BaseException] = []

    def unpack() -> None:
        try:
            unpacker.layer_dirs(image_id)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=unpack)
    thread.start()
    while thread.is_alive():
        collector.collect_garbage()
    thread.join()
    assert not errors, errors
    (lower,) = unpacker.layer_dirs(image_id)
    assert sum(1 for _ in lower.rglob("f*")) == 4000
    unpacker.close()
    collector.close()


def test_blob_reused_by_a_writer_survives_a_concurrent_rmi(strata: Strata, rootfs_tar: Path, root: Path) -> None:
    """The race the shared lock closes: a writer finds a layer blob already stored (so does not write
    it), another process removes the only image using it and collects garbage, then the writer commits
    an image naming that blob. The collection is skipped while the writer holds the lock."""
    strata("import", str(rootfs_tar), "old:1")
    writer, remover = Engine.open(root), Engine.open(root)
    with writer.writing():
        with open(rootfs_tar, "rb") as f:
            lay = writer.ingest_layer(f)  # the blob file exists already: reused, not rewritten
        assert remover.rmi("old:1").deleted  # the image is gone; its blob is garbage now...
        assert writer.store.blob_path(lay.digest).exists()  # ...but not collected under a writer
        raw = (
            b'{"architecture":"amd64","config":{},"os":"linux","rootfs":{"type":"layers","diff_ids":["'
            + str(lay.diff_id).encode()
            + b'"]}}'
        )
        image_id = writer.commit_image(raw, [lay])
    assert writer.layer_dirs(image_id)[0].is_dir()
    with writer.image(image_id).layers()[0].compressed() as blob:
        assert blob.read(512)
    writer.close()
    remover.close()


def test_gc_sweeps_what_a_killed_writer_published(strata: Strata, rootfs_tar: Path, root: Path) -> None:
    """kill -9 between a blob's rename into blobs/ and the transaction naming it leaves a file no row
    knows; an interrupted unpack leaves a staging dir and a lock file. The next collection removes them."""
    strata("import", "-m", "keep", str(rootfs_tar), "keep:1")
    engine = Engine.open(root)
    with engine.writing():
        orphan = engine.ingest_layer(io.BytesIO(tarfile_bytes()))  # published, never committed
    (root / "layers" / ("ab" * 32)).mkdir()  # an unpacked dir of a layer no row knows
    (root / "layers" / f".{'cd' * 32}.lock").touch()
    (root / "tmp" / "layer-x").mkdir()
    assert engine.store.blob_path(orphan.digest).exists()
    engine.collect_garbage()
    assert not engine.store.blob_path(orphan.digest).exists()
    assert not (root / "layers" / ("ab" * 32)).exists()
    assert not list((root / "layers").glob(".*.lock"))
    assert not list((root / "tmp").iterdir())
    assert strata("images", "--format", "{{.Tag}}").stdout == "1\n"
    assert engine.layer_dirs(engine.resolve_image("keep:1"))[0].is_dir()
    engine.close()


def tarfile_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("orphan")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    return buf.getvalue()


def test_concurrent_rmi_of_one_reference(strata: Strata, rootfs_tar: Path, root: Path) -> None:
    """Two processes removing the same tag at once: one untags it, the other finds no such image
    (resolving used to happen before the transaction, so both printed Untagged)."""
    strata("import", str(rootfs_tar), "r:0")
    env = dict(os.environ, STRATA_ROOT=str(root))
    for n in range(1, 9):
        strata("tag", "r:0", f"r:{n}")
        procs = [
            subprocess.Popen([sys.executable, "-m", "strata", "rmi", f"r:{n}"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        results = sorted(((p.communicate(timeout=60), p.returncode) for p in procs), key=lambda r: r[1])
        assert [r[1] for r in results] == [0, 1], results
        assert results[0][0] == (f"Untagged: r:{n}\n", "")
        assert results[1][0] == ("", f"Error: No such image: r:{n}\n")


def test_image_removed_under_a_reader(strata: Strata, rootfs_tar: Path, root: Path) -> None:
    """A reader that resolved an image another process then removes gets No such image, not a raw
    file error (the config blob is gone with it)."""
    reader, remover = Engine.open(root), Engine.open(root)
    image_id = Digest.parse(strata("import", str(rootfs_tar), "gone:1").stdout.strip())
    assert reader.resolve_image("gone:1") == image_id
    remover.rmi("gone:1")
    for call in (reader.image_config, reader.summary, reader.history):
        try:
            call(image_id)
        except ImageNotFound as e:
            assert str(e) == f"No such image: {image_id}"
        else:
            raise AssertionError(f"{call.__name__} found a removed image")
    assert reader.summaries() == []
    reader.close()
    remover.close()
