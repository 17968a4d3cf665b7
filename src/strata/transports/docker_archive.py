"""``docker-archive:`` — the ``docker save`` tarball, read (load) and written (save).

strata writes Docker 20.10's legacy layout (``<config hex>.json``, ``<v1 id>/{VERSION,json,layer.tar}``,
``manifest.json``, ``repositories``; see ``legacy_layout``), which skopeo's ``docker-archive:`` and every
Docker load. Reading accepts that, skopeo's flat variant, Docker 25's layout (both a docker-archive and
an OCI image layout) and plain OCI archives (skopeo ``oci-archive:``).
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, BinaryIO

from strata.archive.compression import Compression, detect_compression
from strata.digest import Digest, digest_file
from strata.errors import ImageNotFound, InvalidArchive, InvalidReference, StrataError, UsageError
from strata.image import mediatypes as mt
from strata.image.api import BlobLayer, Image, Layer, SimpleImage
from strata.image.spec import Descriptor, ImageConfig, Manifest, Platform, load_json
from strata.reference import Reference, parse_normalized_named
from strata.transports.base import BlobInfo, Wording, WriteResult
from strata.transports.gotar import GoTarWriter
from strata.transports.legacy_layout import write_legacy
from strata.transports.legacy_v1 import created_seconds, go_created, v1_layers
from strata.transports.oci_layout import layout_images

__all__ = ["SAVE_WORDING", "ArchiveFileSink", "ArchiveSink", "ArchiveSource", "archive_images"]


def _member(root: Path, name: str) -> Path:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts or not parts:
        raise InvalidArchive(f"invalid archive: manifest names an unsafe path {name!r}")
    path = root.joinpath(*parts)
    if not path.is_file():
        raise InvalidArchive(f"invalid archive: manifest names {name!r}, which is not in the archive")
    return path


def _opener(path: Path) -> Any:
    def open_blob() -> AbstractContextManager[BinaryIO]:
        return open(path, "rb")

    return open_blob


def _archive_layer(path: Path, diff_id: Digest) -> Layer:
    with open(path, "rb") as f:
        kind = detect_compression(f.read(512))
    size = path.stat().st_size
    if kind is Compression.NONE:
        return BlobLayer(Descriptor(mt.OCI_LAYER, diff_id, size), _opener(path), diff_id)
    if kind is None:
        raise InvalidArchive(f"invalid archive: layer {path.name} has an unsupported compression")
    digest, _ = digest_file(str(path))
    media = mt.DOCKER_LAYER if kind is Compression.GZIP else mt.OCI_LAYER_ZSTD
    return BlobLayer(Descriptor(media, digest, size), _opener(path), diff_id)


def _docker_images(root: Path) -> list[tuple[Image, list[Reference]]]:
    try:
        entries = load_json(_member(root, "manifest.json").read_bytes(), "manifest.json")
    except InvalidArchive as e:
        raise InvalidArchive(f"invalid archive: {e}") from None
    if not isinstance(entries, list):
        raise InvalidArchive("invalid archive: manifest.json is not a list")
    out: list[tuple[Image, list[Reference]]] = []
    for entry in entries:
        if not isinstance(entry, dict) or "Config" not in entry:
            raise InvalidArchive("invalid archive: manifest.json entry without Config")
        config = ImageConfig.parse(_member(root, str(entry["Config"])).read_bytes())
        names = [str(n) for n in entry.get("Layers") or []]
        if len(names) != len(config.diff_ids):
            raise InvalidArchive("invalid archive: manifest.json and the image configuration disagree on layers")
        layers = [_archive_layer(_member(root, n), d) for n, d in zip(names, config.diff_ids, strict=True)]
        tags = []
        for t in entry.get("RepoTags") or []:
            try:
                ref = parse_normalized_named(str(t))
            except InvalidReference as e:
                raise InvalidArchive(f"invalid archive: invalid tag {t!r}: {e}") from None
            tags.append(ref.tag_name_only())
        out.append((SimpleImage(config, layers), tags))
    return out


def archive_images(root: Path) -> list[tuple[Image, list[Reference]]]:
    """The images of an unpacked archive: docker-archive if it has manifest.json, else OCI layout."""
    if (root / "manifest.json").is_file():
        return _docker_images(root)
    if (root / "index.json").is_file():
        return layout_images(root)
    # Docker 20.10: no manifest.json is a legacy archive: each directory an image (its json read), then
    # the "repositories" file
    for d in sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if not (root / d / "json").is_file():
            raise InvalidArchive(f"open {root}/{d}/json: no such file or directory")
    raise InvalidArchive(f"open {root}/repositories: no such file or directory")


class ArchiveSource:
    """The image of an unpacked archive (docker-archive, or an OCI archive) named ``ref_name``, or its
    only image when none is named."""

    def __init__(self, root: Path, ref_name: str | None = None, *, shown: str = "") -> None:
        self.root, self.ref_name, self.shown = root, ref_name, shown or str(root)
        self._picked: tuple[Image, list[Reference]] | None = None

    def _pick(self) -> tuple[Image, list[Reference]]:
        if self._picked is None:
            images = archive_images(self.root)
            if self.ref_name:
                want = parse_normalized_named(self.ref_name)
                want = want.with_tag("latest") if want.is_name_only else want
                images = [(img, tags) for img, tags in images if want in tags]
            if not images:
                raise ImageNotFound(self.shown)
            if len(images) > 1:
                raise UsageError(f"{self.shown} holds {len(images)} images: name one")
            self._picked = images[0]
        return self._picked

    def image(self, platform: Platform | None = None) -> Image:
        return self._pick()[0]

    def tags(self) -> list[Reference]:
        return self._pick()[1]


SAVE_WORDING = Wording(reused="", start="Saving layer", by_diff_id=True)
_NO_LISTS = 'destination transport "docker-archive" does not support copying multiple images as a group'


class _Saved:
    """One image the archive holds: its configuration, legacy layer directories and tags."""

    __slots__ = ("config", "created", "image_id", "layers", "parent", "tags", "v1")

    def __init__(self, image: Image, layers: dict[Digest, Layer], parent: Digest | None) -> None:
        self.image_id, self.config, self.parent = image.image_id(), image.raw_config(), parent
        data = image.config().data
        self.created = created_seconds(go_created(data.get("created")))
        self.v1 = v1_layers(data, image.config().diff_ids)
        self.layers = layers
        self.tags: list[Reference] = []


class ArchiveSink:
    """Streams images into a ``docker save`` archive in Docker 20.10's legacy layout (``<config>.json``,
    ``<v1 id>/{VERSION,json,layer.tar}``, ``manifest.json``, ``repositories``). Docker tars a directory,
    so its members are in name order: layers are recorded as they come and streamed by ``close()`` in
    that order, each once (a layer repeated at another place is a symlink to the first, as Docker's)."""

    wording = SAVE_WORDING
    concurrency = 1
    reuse_concurrency = 1
    supports_index = False

    def __init__(self, out: IO[bytes] | BinaryIO, *, tar_size: Any = None, parent_of: Any = None) -> None:
        self.tar = GoTarWriter(out)
        self.tar_size = tar_size  # callable diff_id -> uncompressed size, when known without reading
        self.parent_of = parent_of  # callable image ID -> its parent image ID, for manifest.json's Parent
        self.sizes: dict[Digest, int] = {}
        self.images: list[_Saved] = []
        self._layers: dict[Digest, Layer] = {}
        self._pending: tuple[_Saved, Manifest] | None = None
        self._image: Image | None = None

    def begin(self, image: Image | None = None) -> None:
        self._pending, self._image = None, image

    def reuse_blob(self, layer: Layer) -> BlobInfo | None:
        diff_id = layer.diff_id()
        if diff_id not in self.sizes:
            return None
        return BlobInfo(Descriptor(mt.OCI_LAYER, diff_id, self.sizes[diff_id]), diff_id)

    def put_blob(self, layer: Layer) -> BlobInfo:
        """Record the layer (streamed, verified, by ``close()``); its uncompressed size is learnt now."""
        diff_id = layer.diff_id()
        size = self.tar_size(diff_id) if self.tar_size else 0
        if not size:
            size = layer.size() if layer.digest() == diff_id else _uncompressed_size(layer)
        self._layers.setdefault(diff_id, layer)
        self.sizes[diff_id] = size
        return BlobInfo(Descriptor(mt.OCI_LAYER, diff_id, size), diff_id)

    def put_config(self, image: Image) -> None:
        pass  # written by close(), in name order

    def put_manifest(self, image: Image, blobs: list[BlobInfo], *, child: bool = False) -> Manifest:
        if child:
            raise StrataError(f"copying multiple images: {_NO_LISTS}")
        if not blobs:
            raise StrataError("empty export - not implemented")  # Docker's words for an image without layers
        cfg = Descriptor(mt.OCI_CONFIG, image.image_id(), len(image.raw_config()))
        manifest = Manifest.build(cfg, [b.descriptor for b in blobs], mt.OCI_MANIFEST)
        parent = self.parent_of(image.image_id()) if self.parent_of else None
        self._pending = (_Saved(image, self._layers, parent), manifest)
        return manifest

    def put_index(self, raw: bytes, media_type: str, *, child: bool = False) -> Digest:
        raise StrataError(f"copying multiple images: {_NO_LISTS}")

    def commit(self, tags: list[Reference]) -> WriteResult:
        assert self._pending is not None, "commit before put_manifest"
        (saved, manifest), self._pending = self._pending, None
        saved.tags = [t for t in tags if t.tag and not t.digest]
        self.images.append(saved)
        return WriteResult(saved.image_id, manifest.digest, len(manifest.raw))

    def abort(self) -> None:
        self._pending = None

    def close(self) -> None:
        write_legacy(self.tar, self.images, self.sizes)
        self.tar.close()


class ArchiveFileSink(ArchiveSink):
    """``docker-archive:<path>``: the archive streams into a temp file beside ``path``; ``close()``
    fsyncs and renames it into place, ``discard()`` removes it (a failed copy leaves no file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed by close() or discard()
        super().__init__(self._file)

    def close(self) -> None:
        try:
            super().close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.path)
        finally:
            self.discard()

    def discard(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


def _uncompressed_size(layer: Layer) -> int:
    total = 0
    with layer.uncompressed() as f:
        while chunk := f.read(1 << 20):
            total += len(chunk)
    return total
