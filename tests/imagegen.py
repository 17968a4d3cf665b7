"""Test images as the library sees them, made and checked in-process (no CLI, no daemon).

Generator::

    image = generate(tmp / "blobs", [{"bin/sh": b"..."}, {"etc/motd": b"hi\\n", "etc/link": Link("motd")}])
    put(image, "strata:app:1", root=tmp / "store")        # or oci:/dir:1, oci-archive:/x.tar:1,
    put(image, f"docker-archive:{tmp}/a.tar:app:1")       # docker-archive:/x.tar:app:1, docker://host/app:1

``generate`` writes each layer's blob (gzip or plain tar; Docker v2s2 or OCI media types) into a directory
and returns a ``SimpleImage``; ``put`` copies it with the library's one copy engine (``copier.copy_image``)
into a transport named as ``strata copy`` names them. ``GeneratedIndex([amd64, arm64])`` is a multi-platform
index of generated images; ``put_all(index, "oci:/dir:1")`` copies it as ``copy --all`` does
(``copier.copy_index``).

Validator::

    facts = validate("oci:/dir:1")                          # or strata:app:1 (root=...), docker-archive:...

reads the image back through the same transport and checks it is complete with this module's own hashing
(never the code under test): the manifest's digest, the config's digest and size (the image ID), media
types that agree, history entries for the layers, and each layer blob's digest and size, its diff ID in
the config, a tar that reads to its end. What the transport keeps on disk is checked as well: every blob
file of a layout, archive or store is named by its content's digest, every descriptor and store row
agrees with the file it names. ``ImageProblem`` lists every problem found; ``Facts`` is what tests compare
across transports.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import sqlite3
import tarfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strata.copier import copy_image, copy_index
from strata.digest import digest_bytes
from strata.engine import Engine
from strata.errors import StrataError
from strata.image import mediatypes as mt
from strata.image.api import BlobLayer, Image, Layer, SimpleImage, image_manifest
from strata.image.spec import Descriptor, ImageConfig, Index, Manifest, Platform
from strata.reference import Reference, parse_normalized_named
from strata.transports.names import TransportContext, open_sink, open_source, split_name

__all__ = ["Facts", "GeneratedIndex", "ImageProblem", "Link", "check_image", "generate", "layer_tar", "put", "put_all",
           "validate"]

MTIME = 1_700_000_000
CREATED = "2024-01-01T00:00:00Z"


@dataclass(frozen=True)
class Link:
    """A symlink member of a generated layer."""

    target: str


Member = bytes | str | Link | None  # file content (str: UTF-8), a symlink, or a directory (None)


def layer_tar(files: Mapping[str, Member]) -> bytes:
    """A deterministic PAX layer tar (sorted names, fixed times): ``bin/`` files 0755, others 0644,
    directories 0755."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, content in sorted(files.items()):
            ti = tarfile.TarInfo(name.rstrip("/"))
            ti.mtime = MTIME
            data = b""
            if content is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif isinstance(content, Link):
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, content.target, 0o777
            else:
                data = content.encode() if isinstance(content, str) else content
                ti.size, ti.mode = len(data), 0o755 if name.startswith("bin/") else 0o644
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _opener(path: Path) -> Any:
    return lambda: open(path, "rb")


def _layer(directory: Path, layer: Mapping[str, Member] | bytes, gz: bool, oci: bool, level: int) -> Layer:
    tar = layer if isinstance(layer, bytes) else layer_tar(layer)
    blob = gzip.compress(tar, compresslevel=level, mtime=0) if gz else tar
    dg = digest_bytes(blob)
    path = directory / dg.hex
    path.write_bytes(blob)
    if oci:
        media_type = mt.OCI_LAYER_GZIP if gz else mt.OCI_LAYER
    else:
        media_type = mt.DOCKER_LAYER if gz else mt.OCI_LAYER  # Docker has no plain-tar type: pushes use OCI's
    return BlobLayer(Descriptor(media_type, dg, len(blob)), _opener(path), digest_bytes(tar))


def generate(
    directory: Path,
    layers: list[Mapping[str, Member] | bytes],
    *,
    gz: bool = True,
    oci: bool = False,
    level: int = 9,
    config: Mapping[str, Any] | None = None,
    architecture: str = "amd64",
    variant: str = "",
    history: list[str] | None = None,
) -> SimpleImage:
    """An image whose layers are ``layers`` (file maps, or whole tars as bytes), their blobs written to
    ``directory``; ``config`` is the container config (``Cmd``, ``Env``, ``Labels`` …), ``history`` the
    ``created_by`` of each layer. Docker v2s2 media types unless ``oci``."""
    directory.mkdir(parents=True, exist_ok=True)
    lays = [_layer(directory, spec, gz, oci, level) for spec in layers]
    steps = history if history is not None else [f"layer {i}" for i in range(len(lays))]
    assert len(steps) == len(lays), "one history entry per layer"
    cfg = ImageConfig.from_dict(
        {
            "architecture": architecture,
            "os": "linux",
            **({"variant": variant} if variant else {}),
            "created": CREATED,
            "config": dict(config) if config is not None else {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [str(lay.diff_id()) for lay in lays]},
            "history": [{"created": CREATED, "created_by": step} for step in steps],
        }
    )
    manifest = image_manifest(cfg, lays, mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST)
    return SimpleImage(cfg, lays, manifest)


# --- through the library's transports ------------------------------------------------------------


@contextlib.contextmanager
def _context(root: Path | None) -> Iterator[TransportContext]:
    from strata import api

    engines: list[Engine] = []

    def engine() -> Engine:
        if not engines:
            assert root is not None, "the store transport needs root="
            engines.append(Engine.open(root))
        return engines[0]

    try:
        yield TransportContext(engine, api._client, lambda: None)
    finally:
        for e in engines:
            e.close()


def put(image: Image, name: str, *, root: Path | None = None, tags: tuple[str, ...] = ()) -> None:
    """``image`` copied into the transport ``name`` (the store at ``root`` for ``strata:``) by
    ``copier.copy_image``; ``tags`` name it where the transport name does not."""
    with _context(root) as ctx, contextlib.ExitStack() as stack:
        sink, names = open_sink(name, ctx, stack, [parse_normalized_named(t) for t in tags])
        copy_image(image, sink, names)


class GeneratedIndex:
    """An OCI index of generated images, one entry per image with its config's platform; an
    ``IndexSource`` (``copier.copy_index`` reads it: ``put_all``)."""

    def __init__(self, images: list[Image]) -> None:
        self.images = {str(im.digest()): im for im in images}
        self.index = Index.build([Descriptor(im.manifest().media_type, im.digest(), len(im.raw_manifest()),
                                             platform=im.config().platform) for im in images])

    @property
    def digest(self) -> str:
        return str(self.index.digest)

    def top(self) -> tuple[bytes, str]:
        return self.index.raw, self.index.media_type

    def manifest(self, desc: Descriptor) -> bytes:
        return self.images[str(desc.digest)].raw_manifest()

    def image_of(self, manifest: Manifest) -> Image:
        return self.images[str(manifest.digest)]

    def image(self, platform: Platform | None = None) -> Image:
        return next(im for im in self.images.values() if platform in (None, im.config().platform))

    def tags(self) -> list[Reference]:
        return []


def put_all(index: GeneratedIndex, name: str, *, root: Path | None = None) -> None:
    """``index`` and every image in it copied into the transport ``name`` by ``copier.copy_index``
    (as ``copy --all``; registries and OCI layouts hold indexes)."""
    with _context(root) as ctx, contextlib.ExitStack() as stack:
        sink, names = open_sink(name, ctx, stack, [])
        copy_index(index, sink, names)


# --- the validator -----------------------------------------------------------------------------


class ImageProblem(AssertionError):
    """An image (or the transport holding it) is not complete; ``problems`` says each way."""

    def __init__(self, where: str, problems: list[str]) -> None:
        super().__init__(f"{where}: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Facts:
    """What a validated image is: IDs and digests as the transport gave them."""

    image_id: str
    manifest_digest: str
    diff_ids: tuple[str, ...]
    layer_digests: tuple[str, ...]
    layer_sizes: tuple[int, ...]
    content_sizes: tuple[int, ...]  # Docker's layer size: file bytes, symlink targets


def _plain(blob: bytes) -> bytes:
    """The layer tar of a blob: gzip and zstd undone, anything else as it is."""
    if blob[:2] == b"\x1f\x8b":
        return gzip.decompress(blob)
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True).read()
    return blob


def _tar_facts(tar: bytes) -> tuple[str, int]:
    """(diff ID, content size) of an uncompressed layer; one that does not read as a tar raises
    ``tarfile.TarError``."""
    content = 0
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as t:
        for m in t:
            content += m.size if m.isreg() else len(m.linkname.encode()) if m.issym() else 0
    return str(digest_bytes(tar)), content


def _config_problems(image: Image, problems: list[str]) -> ImageConfig | None:
    raw_manifest, raw_config = image.raw_manifest(), image.raw_config()
    manifest = image.manifest()
    if str(image.digest()) != str(digest_bytes(raw_manifest)):
        problems.append(f"manifest digest {image.digest()} is not the sha256 of its bytes")
    cfg_digest = str(digest_bytes(raw_config))
    if str(manifest.config.digest) != cfg_digest or str(image.image_id()) != cfg_digest:
        problems.append(f"config {cfg_digest} is named {manifest.config.digest} (image ID {image.image_id()})")
    if manifest.config.size != len(raw_config):
        problems.append(f"config size {len(raw_config)} recorded as {manifest.config.size}")
    oci = manifest.media_type == mt.OCI_MANIFEST
    if manifest.config.media_type != (mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG):
        problems.append(f"config media type {manifest.config.media_type} in a {manifest.media_type}")
    try:
        cfg = ImageConfig.parse(raw_config)
    except StrataError as e:
        problems.append(f"config does not parse: {e}")
        return None
    layered = [h for h in cfg.history if not h.get("empty_layer")]
    if cfg.history and len(layered) != len(cfg.diff_ids):
        problems.append(f"{len(layered)} history entries with layers for {len(cfg.diff_ids)} diff IDs")
    return cfg


def _layer_problems(i: int, layer: Layer, desc: Descriptor, diff_id: str, problems: list[str]) -> int:
    with layer.compressed() as f:
        blob = f.read()
    if (str(digest_bytes(blob)), len(blob)) != (str(desc.digest), desc.size):
        problems.append(f"layer {i}: blob is {digest_bytes(blob)} ({len(blob)} bytes), "
                        f"manifest says {desc.digest} ({desc.size})")
    if layer.media_type() != desc.media_type:
        problems.append(f"layer {i}: media type {layer.media_type()}, manifest says {desc.media_type}")
    try:
        got, content = _tar_facts(_plain(blob))
    except (tarfile.TarError, OSError, EOFError) as e:
        problems.append(f"layer {i}: not a complete tar ({e})")
        return 0
    if got != diff_id:
        problems.append(f"layer {i}: content is {got}, config's diff ID {diff_id}")
    return content


def check_image(image: Image, where: str = "image") -> Facts:
    """Every part of ``image`` hashed and compared with what names it; ``ImageProblem`` otherwise."""
    problems: list[str] = []
    cfg = _config_problems(image, problems)
    manifest, layers = image.manifest(), image.layers()
    diff_ids = [str(d) for d in cfg.diff_ids] if cfg is not None else []
    if not (len(manifest.layers) == len(layers) == len(diff_ids)):
        problems.append(f"{len(manifest.layers)} manifest layers, {len(layers)} layers, {len(diff_ids)} diff IDs")
    contents = [_layer_problems(i, lay, desc, dif, problems)
                for i, (lay, desc, dif) in enumerate(zip(layers, manifest.layers, diff_ids, strict=False))]
    if problems:
        raise ImageProblem(where, problems)
    return Facts(str(image.image_id()), str(image.digest()), tuple(diff_ids),
                 tuple(str(d.digest) for d in manifest.layers), tuple(d.size for d in manifest.layers),
                 tuple(contents))


def validate(name: str, *, root: Path | None = None) -> Facts:
    """The image the transport name ``name`` means, read back through that transport and checked
    (``check_image``), then what the transport keeps on disk (layout, archive or store)."""
    with _context(root) as ctx, contextlib.ExitStack() as stack:
        try:
            image = open_source(name, ctx, stack).image()
        except StrataError as e:
            raise ImageProblem(name, [f"reading it back: {e}"]) from e
        facts = check_image(image, name)
    kind, rest = split_name(name)
    path = Path(rest.partition(":")[0])
    on_disk: dict[str, Callable[[], list[str]]] = {
        "oci": lambda: _layout_files(path), "oci-archive": lambda: _oci_archive_files(path),
        "docker-archive": lambda: _archive_files(path), "strata": lambda: _store_files(root)}
    problems = on_disk[kind]() if kind in on_disk else []
    if problems:
        raise ImageProblem(name, problems)
    return facts


# --- what transports keep on disk --------------------------------------------------------------


def _blob_name_problems(blobs: Mapping[str, bytes | Path]) -> list[str]:
    """Each content-addressed file (name ``sha256:<hex>``) holds what its name says."""
    out = []
    for name, data in sorted(blobs.items()):
        got = str(digest_bytes(data if isinstance(data, bytes) else data.read_bytes()))
        if got != name:
            out.append(f"blob {name} holds {got}")
    return out


def _descriptors(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in [doc.get("config"), *doc.get("layers", []), *doc.get("manifests", [])] if d]


def _walk_index(blobs: Mapping[str, bytes], top: dict[str, Any]) -> list[str]:
    """Every descriptor reachable from ``top`` names a blob that is there, with its size."""
    problems, todo, seen = [], _descriptors(top), set()
    while todo:
        desc = todo.pop()
        digest = desc.get("digest", "")
        if digest in seen:
            continue
        seen.add(digest)
        data = blobs.get(digest)
        if data is None:
            problems.append(f"{digest} ({desc.get('mediaType')}) is missing")
        elif len(data) != desc.get("size"):
            problems.append(f"{digest}: {len(data)} bytes, descriptor says {desc.get('size')}")
        elif desc.get("mediaType") in (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST):
            todo.extend(_descriptors(json.loads(data)))
    return problems


def _layout_problems(files: Mapping[str, bytes]) -> list[str]:
    """An OCI layout given as relative path -> bytes."""
    if json.loads(files.get("oci-layout", b"{}")).get("imageLayoutVersion") != "1.0.0":
        return ["oci-layout is missing or not version 1.0.0"]
    blobs = {"sha256:" + p.rsplit("/", 1)[1]: d for p, d in files.items() if p.startswith("blobs/sha256/")}
    return _blob_name_problems(blobs) + _walk_index(blobs, json.loads(files["index.json"]))


def _layout_files(path: Path) -> list[str]:
    files = {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    return _layout_problems(files)


def _tar_files(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as t:
        return {m.name.removeprefix("./"): t.extractfile(m).read()  # type: ignore[union-attr]
                for m in t if m.isreg() or m.issym()}  # docker save links a repeated layer


def _oci_archive_files(path: Path) -> list[str]:
    return _layout_problems(_tar_files(path))


def _archive_files(path: Path) -> list[str]:
    """docker-save: each manifest.json entry's config is named by its digest and its layers (tars, as
    Docker writes them) are the config's diff IDs; an OCI layout inside (Docker 25's) is checked too."""
    files = _tar_files(path)
    problems = _layout_problems(files) if "index.json" in files else []
    for entry in json.loads(files["manifest.json"]):
        config = files.get(entry["Config"])
        if config is None:
            problems.append(f"config {entry['Config']} is missing")
            continue
        hex_name = entry["Config"].removeprefix("blobs/sha256/").removesuffix(".json")
        if digest_bytes(config).hex != hex_name:
            problems.append(f"config {entry['Config']} holds {digest_bytes(config)}")
        diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        got = [str(digest_bytes(files[n])) if n in files else f"missing {n}" for n in entry["Layers"]]
        if got != diff_ids:
            problems.append(f"layers {got} for diff IDs {diff_ids}")
    return problems


def _store_files(root: Path | None) -> list[str]:
    """The store: every blob file named by its digest and its row's size; each image's config blob,
    layer rows in the config's order, layer sizes as the tars give them; tags naming images."""
    assert root is not None
    blob_dir = root / "blobs" / "sha256"
    files = {f"sha256:{p.name}": p for p in blob_dir.iterdir()} if blob_dir.is_dir() else {}
    problems = _blob_name_problems(files)
    db = sqlite3.connect(f"file:{root / 'strata.db'}?mode=ro", uri=True)
    try:
        for digest, size in db.execute("SELECT digest, size FROM blobs"):
            if digest not in files or files[digest].stat().st_size != size:
                problems.append(f"blob row {digest} ({size} bytes) has no such file")
        for (image_id,) in db.execute("SELECT id FROM images"):
            problems += _store_image(db, files, image_id)
        for name, image_id in db.execute("SELECT name, image_id FROM tags"):
            if not db.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone():
                problems.append(f"tag {name} names no image ({image_id})")
    finally:
        db.close()
    return problems


def _store_image(db: sqlite3.Connection, files: Mapping[str, Path], image_id: str) -> list[str]:
    if image_id not in files:
        return [f"image {image_id}: no config blob"]
    diff_ids = json.loads(files[image_id].read_bytes())["rootfs"]["diff_ids"]
    rows = db.execute("SELECT diff_id, blob FROM image_layers WHERE image_id=? ORDER BY position", (image_id,))
    rows_list = rows.fetchall()
    problems = [] if [r[0] for r in rows_list] == diff_ids else [f"image {image_id}: layer rows {rows_list}"]
    for diff_id, blob in rows_list:
        layer = db.execute("SELECT size, tar_size FROM layers WHERE diff_id=?", (diff_id,)).fetchone()
        if blob not in files or layer is None:
            problems.append(f"image {image_id}: layer {diff_id} (blob {blob}) is missing")
            continue
        plain = _plain(files[blob].read_bytes())
        got = _tar_facts(plain)
        if (got[0], got[1], len(plain)) != (diff_id, *layer):
            problems.append(f"layer {diff_id}: blob {blob} gives {got[0]}, {got[1]} content bytes, "
                            f"{len(plain)} tar bytes; rows say {tuple(layer)}")
    return problems
