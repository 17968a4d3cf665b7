"""Every transport to every other through the one copy engine (``strata.copy``): the store
(``strata:``), a real strata registry (``docker://``), ``docker-archive:``, ``oci:`` and ``oci-archive:``.

One image (two gzip layers) is seeded into each transport, then copied from each to each other; what
arrives is read back through the same transport and must keep the image ID (config digest), the
diff IDs, the layer contents and — between transports that keep blobs as they are (all but
docker-archive, which stores layers uncompressed, as Docker does) — the manifest digest."""

from __future__ import annotations

import contextlib
import gzip
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.helpers import ServerThread
from strata import api
from strata.copier import copy_image
from strata.digest import HashingReader
from strata.engine import Engine
from strata.errors import StrataError
from strata.image.api import Image
from strata.reference import parse_normalized_named
from strata.transports.names import TransportContext, open_source
from strata.transports.store import StoreSink

from .conftest import make_image

KINDS = ("strata", "docker", "docker-archive", "oci", "oci-archive")
KEEPS_BLOBS = {"strata", "docker", "oci", "oci-archive"}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("STRATA_ROOT", "DOCKER_CONFIG", "STRATA_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "docker-config").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("STRATA_CONFIG", str(tmp_path / "strata.json"))
    return tmp_path


def _name(kind: str, tmp: Path, host: str, label: str) -> str:
    """Where ``label``'s copy lives in transport ``kind`` (and, for the store, which root holds it)."""
    return {
        "strata": f"strata:rt/{label}:1",
        "docker": f"docker://{host}/rt/{label}:1",
        "docker-archive": f"docker-archive:{tmp / label}.tar:rt/{label}:1",
        "oci": f"oci:{tmp / label}-layout:1",
        "oci-archive": f"oci-archive:{tmp / label}-oci.tar:1",
    }[kind]


@contextlib.contextmanager
def _read(name: str, root: Path) -> Iterator[Image]:
    engine = Engine.open(root)
    ctx = TransportContext(lambda: engine, api._client, lambda: None)
    try:
        with contextlib.ExitStack() as stack:
            yield open_source(name, ctx, stack).image()
    finally:
        engine.close()


def _facts(image: Image) -> tuple[str, list[str], list[str], str]:
    contents = []
    for layer in image.layers():
        with layer.uncompressed() as f:
            reader = HashingReader(f)
            reader.drain()
            contents.append(str(reader.digest))
    return str(image.image_id()), [str(d) for d in image.config().diff_ids], contents, str(image.digest())


def test_every_transport_to_every_other(env: Path, strata_registry: ServerThread) -> None:
    host = strata_registry.url
    seed_root = env / "seed-root"
    image = make_image(env / "blobs", [{"bin/base": b"base layer " * 5000}, {"etc/top": b"top layer\n"}])
    engine = Engine.open(seed_root)
    try:
        copy_image(image, StoreSink(engine), [parse_normalized_named("rt/seed:1")])
    finally:
        engine.close()
    want_id, want_diffs = str(image.image_id()), [str(d) for d in image.config().diff_ids]

    sources = {"strata": "strata:rt/seed:1"}
    for kind in KINDS[1:]:  # the seed, as each other transport holds it
        sources[kind] = _name(kind, env, host, f"src-{kind}")
        api.copy("strata:rt/seed:1", sources[kind], root=seed_root)
    for src, dst in itertools.permutations(KINDS, 2):
        label = f"{src}-to-{dst}"
        target = _name(dst, env, host, label)
        dst_root = env / f"root-{label}" if dst == "strata" else seed_root  # a fresh store to copy into
        result = api.copy(sources[src], target, root=dst_root)
        assert str(result.image_id) == want_id, label
        with _read(target, dst_root) as got, _read(sources[src], seed_root) as had:
            image_id, diffs, contents, manifest = _facts(got)
            assert (image_id, diffs, contents) == (want_id, want_diffs, want_diffs), label
            if src in KEEPS_BLOBS and dst in KEEPS_BLOBS:
                assert manifest == str(had.digest()), label


@pytest.mark.parametrize("kind", ["strata", "docker-archive", "oci", "oci-archive"])
def test_a_failed_copy_leaves_nothing_named(env: Path, kind: str) -> None:
    """A layer whose content does not match its diff ID fails the copy: no archive file (nor its temp
    file), no index.json entry, no image in the store."""
    image = make_image(env / "blobs", [{"etc/a": b"a"}, {"etc/b": b"b" * 1000}])
    layout = env / "src-layout"
    engine = Engine.open(env / "seed")
    try:
        copy_image(image, StoreSink(engine), [parse_normalized_named("rt/ok:1")])
    finally:
        engine.close()
    api.copy("strata:rt/ok:1", f"oci:{layout}:1", root=env / "seed")
    top_layer = image.layers()[1].digest()
    (layout / "blobs" / "sha256" / top_layer.hex).write_bytes(gzip.compress(b"not the layer", mtime=0))
    out = env / "out"
    out.mkdir()
    target = _name(kind, out, "unused", "dst")
    with pytest.raises(StrataError):
        api.copy(f"oci:{layout}:1", target, root=env / "fresh")
    left = sorted(p.name for p in out.iterdir())
    if kind == "oci":  # blobs already written may stay (content-addressed); nothing names them
        assert left == ["dst-layout"] and not (out / "dst-layout" / "index.json").exists()
    else:
        assert left == []  # no archive, no temp file
    if kind == "strata":
        engine = Engine.open(env / "fresh")
        try:
            assert engine.summaries() == []
        finally:
            engine.close()
