"""Every transport to every other through the one copy engine (``strata.copy``): the store
(``strata:``), a real strata registry (``docker://``), ``docker-archive:``, ``oci:`` and ``oci-archive:``.

One image (two gzip layers) is seeded into each transport, then copied from each to each other; what
arrives is read back through the same transport and checked complete (tests/imagegen.py's validator:
every digest, size and diff ID, and the files the transport keeps) and must keep the image ID (config
digest), the diff IDs, the layer contents and — between transports that keep blobs as they are (all but
docker-archive, which stores layers uncompressed, as Docker does) — the manifest digest."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pytest

from imagegen import check_image, generate, put, validate
from server.helpers import ServerThread
from strata import api
from strata.engine import Engine
from strata.errors import StrataError

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


def test_every_transport_to_every_other(env: Path, strata_registry: ServerThread) -> None:
    host = strata_registry.url
    seed_root = env / "seed-root"
    image = generate(env / "blobs", [{"bin/base": b"base layer " * 5000}, {"etc/top": b"top layer\n"}])
    put(image, "strata:rt/seed:1", root=seed_root)
    want = check_image(image)

    sources = {"strata": "strata:rt/seed:1"}
    for kind in KINDS[1:]:  # the seed, as each other transport holds it
        sources[kind] = _name(kind, env, host, f"src-{kind}")
        api.copy("strata:rt/seed:1", sources[kind], root=seed_root)
    had = {kind: validate(name, root=seed_root) for kind, name in sources.items()}
    for src, dst in itertools.permutations(KINDS, 2):
        label = f"{src}-to-{dst}"
        target = _name(dst, env, host, label)
        dst_root = env / f"root-{label}" if dst == "strata" else seed_root  # a fresh store to copy into
        result = api.copy(sources[src], target, root=dst_root)
        assert str(result.image_id) == want.image_id, label
        got = validate(target, root=dst_root)  # complete: every digest, size and diff ID checked
        assert (got.image_id, got.diff_ids, got.content_sizes) == (want.image_id, want.diff_ids,
                                                                   want.content_sizes), label
        if src in KEEPS_BLOBS and dst in KEEPS_BLOBS:
            assert got.manifest_digest == had[src].manifest_digest == want.manifest_digest, label


@pytest.mark.parametrize("kind", ["strata", "docker-archive", "oci", "oci-archive"])
def test_a_failed_copy_leaves_nothing_named(env: Path, kind: str) -> None:
    """A layer whose content does not match its diff ID fails the copy: no archive file (nor its temp
    file), no index.json entry, no image in the store."""
    image = generate(env / "blobs", [{"etc/a": b"a"}, {"etc/b": b"b" * 1000}])
    layout = env / "src-layout"
    put(image, "strata:rt/ok:1", root=env / "seed")
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
