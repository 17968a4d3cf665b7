"""``oci:`` — an OCI image layout directory (oci-layout, index.json, blobs/sha256/<hex>) as a source
(``LayoutSource``: one image, or the raw documents of an index) and a sink (``LayoutSink``, the one
OCI-layout writer: ``oci:``, ``oci-archive:`` and ``copy --all`` all write through it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from strata.atomicfile import open_atomic, write_bytes_atomic
from strata.digest import Digest, digest_bytes, hasher
from strata.errors import DigestMismatch, ImageNotFound, InvalidArchive, StrataError, UsageError
from strata.image import mediatypes as mt
from strata.image.api import BlobLayer, Image, Layer, SimpleImage
from strata.image.spec import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    canonical_json,
    load_json,
    parse_manifest_or_index,
)
from strata.reference import Reference, parse_normalized_named
from strata.transports.base import MAX_INDEX_DEPTH, BlobInfo, Wording, WriteResult

__all__ = [
    "LAYOUT_FILE",
    "LayoutSink",
    "LayoutSource",
    "OciArchiveSink",
    "host_platform",
    "layout_image",
    "layout_images",
    "select_platform",
]

LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
MAX_MANIFEST = 4 << 20


def host_platform() -> Platform:
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)
    return Platform("linux", arch, "v8" if arch == "arm64" else ("v7" if arch == "arm" else ""))


def select_platform(index: Index, want: Platform | None = None) -> Descriptor:
    """The manifest of ``index`` for ``want`` (the host by default), as Docker chooses."""
    want = want or host_platform()
    candidates = [d for d in index.manifests if d.platform is not None]
    for d in candidates:
        p = d.platform
        assert p is not None
        if p.os == want.os and p.architecture == want.architecture and (
            not want.variant or not p.variant or p.variant == want.variant
        ):
            return d
    if not candidates and index.manifests:
        return index.manifests[0]
    raise ImageNotFound(f"no matching manifest for {want} in the manifest list entries")


def _blob_path(root: Path, digest: Digest) -> Path:
    return root / "blobs" / digest.algorithm / digest.hex


def _read_blob(root: Path, desc: Descriptor, limit: int = MAX_MANIFEST) -> bytes:
    path = _blob_path(root, desc.digest)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InvalidArchive(f"invalid image layout: blob {desc.digest} is missing") from None
    if size > limit:
        raise InvalidArchive(f"invalid image layout: {desc.digest} is larger than {limit} bytes")
    data = path.read_bytes()
    if digest_bytes(data, desc.digest.algorithm) != desc.digest:
        raise InvalidArchive(f"invalid image layout: blob {desc.digest} does not match its digest")
    return data


def _opener(path: Path) -> Any:
    def open_blob() -> AbstractContextManager[BinaryIO]:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise InvalidArchive(f"invalid image layout: blob {path.name} is missing") from None

    return open_blob


def _image_of(root: Path, doc: Manifest) -> Image:
    config = ImageConfig.parse(_read_blob(root, doc.config, 64 << 20))
    diff_ids = config.diff_ids
    if len(diff_ids) != len(doc.layers):
        raise InvalidArchive("invalid image: manifest and configuration disagree on the number of layers")
    layers: list[Layer] = []
    for d, diff in zip(doc.layers, diff_ids, strict=True):
        path = _blob_path(root, d.digest)
        if not path.exists():
            raise InvalidArchive(f"invalid image layout: layer blob {d.digest} is missing")
        layers.append(BlobLayer(d, _opener(path), diff))
    return SimpleImage(config, layers, doc)


def layout_image(root: Path, desc: Descriptor, platform: Platform | None = None) -> Image:
    """The image ``desc`` names, choosing ``platform`` down nested indexes (at most ``MAX_INDEX_DEPTH``)."""
    for _ in range(MAX_INDEX_DEPTH + 1):
        doc = parse_manifest_or_index(_read_blob(root, desc), desc.media_type)
        if isinstance(doc, Manifest):
            return _image_of(root, doc)
        desc = select_platform(doc, platform)
    raise InvalidArchive(f"invalid image index: nested more than {MAX_INDEX_DEPTH} levels deep")


def _tags_of(desc: Descriptor) -> list[Reference]:
    ann = desc.annotations or {}
    for candidate in (ann.get(NAME_ANNOTATION) or "", ann.get(REF_ANNOTATION) or ""):
        if candidate and ("/" in candidate or ":" in candidate):
            try:
                ref = parse_normalized_named(candidate)
            except StrataError:
                continue
            if ref.tag is not None:
                return [ref]
    return []


def read_index(root: Path) -> Index:
    """The layout's ``index.json``, with a clear error when it is missing or not an index."""
    try:
        raw = (root / "index.json").read_bytes()
    except FileNotFoundError:
        raise InvalidArchive(f"invalid image layout {root}: index.json is missing") from None
    try:
        doc = load_json(raw, "index.json")
    except InvalidArchive as e:
        raise InvalidArchive(f"invalid image layout {root}: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArchive(f"invalid image layout {root}: index.json: not a JSON object")
    return Index.parse(raw, mt.OCI_INDEX)


def _named(desc: Descriptor, ref_name: str | None) -> bool:
    ann = desc.annotations or {}
    return ref_name is None or ref_name in (ann.get(REF_ANNOTATION), ann.get(NAME_ANNOTATION))


def layout_images(
    root: Path, *, ref_name: str | None = None, platform: Platform | None = None
) -> list[tuple[Image, list[Reference]]]:
    """Every image an OCI layout's index.json names (or the one named ``ref_name``), with its tags."""
    out = [(layout_image(root, d, platform), _tags_of(d)) for d in read_index(root).manifests if _named(d, ref_name)]
    if ref_name is not None and not out:
        raise ImageNotFound(f"{ref_name} in OCI layout {root}")
    return out


class LayoutSource:
    """The document ``ref_name`` names in an OCI layout (the only one when ``ref_name`` is None)."""

    def __init__(self, root: Path, ref_name: str | None = None) -> None:
        self.root, self.ref_name = root, ref_name

    def _entry(self) -> Descriptor:
        entries = [d for d in read_index(self.root).manifests if _named(d, self.ref_name)]
        if not entries:
            raise ImageNotFound(f"{self.ref_name or 'an image'} in OCI layout {self.root}")
        if len(entries) > 1:
            raise UsageError(f"OCI layout {self.root} holds {len(entries)} images: name one")
        return entries[0]

    def image(self, platform: Platform | None = None) -> Image:
        return layout_image(self.root, self._entry(), platform)

    def tags(self) -> list[Reference]:
        return _tags_of(self._entry())

    def top(self) -> tuple[bytes, str]:
        desc = self._entry()
        return self.manifest(desc), desc.media_type

    def manifest(self, desc: Descriptor) -> bytes:
        return _read_blob(self.root, desc)

    def image_of(self, manifest: Manifest) -> Image:
        return _image_of(self.root, manifest)


class LayoutSink:
    """Writes images and indexes into an OCI layout directory: blobs verified and renamed into place,
    then ``index.json`` replaced atomically (fsynced) by ``commit``. The one OCI-layout writer."""

    wording = Wording(reused="Copying blob", start="Copying blob")
    supports_index = True
    reuse_concurrency = 1

    def __init__(self, root: Path, ref_name: str | None = None, *, concurrency: int = 3) -> None:
        self.root = root
        self.ref_name = ref_name
        self.concurrency = max(1, concurrency)
        self._pending: tuple[Descriptor, Digest] | None = None  # the document to name, and its image ID

    def _has(self, digest: Digest) -> bool:
        return _blob_path(self.root, digest).is_file()

    def _write(self, digest: Digest, fill: Callable[[BinaryIO], object]) -> None:
        """Store a blob atomically, verified against ``digest`` on the way."""
        path = _blob_path(self.root, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open_atomic(path) as raw:
            writer = _HashingWriter(raw, digest.algorithm)
            fill(writer)  # type: ignore[arg-type]
            if writer.digest() != digest:
                raise DigestMismatch(f"blob verification failed for digest {digest}")

    def _write_bytes(self, digest: Digest, data: bytes) -> None:
        if not self._has(digest):
            self._write(digest, lambda f: f.write(data))

    def begin(self, image: Image | None = None) -> None:
        self._pending = None
        self.root.mkdir(parents=True, exist_ok=True)

    def reuse_blob(self, layer: Layer) -> BlobInfo | None:
        desc = Descriptor(layer.media_type(), layer.digest(), layer.size())
        return BlobInfo(desc) if self._has(desc.digest) else None

    def put_blob(self, layer: Layer) -> BlobInfo:
        def fill(out: BinaryIO) -> None:
            with layer.compressed() as src:
                shutil.copyfileobj(src, out, 1 << 20)

        self._write(layer.digest(), fill)
        return BlobInfo(Descriptor(layer.media_type(), layer.digest(), layer.size()))

    def put_config(self, image: Image) -> None:
        self._write_bytes(image.image_id(), image.raw_config())

    def put_manifest(self, image: Image, blobs: list[BlobInfo], *, child: bool = False) -> Manifest:
        manifest = image.manifest()
        self._write_bytes(manifest.digest, manifest.raw)
        self._pending = (manifest.descriptor(), image.image_id())
        return manifest

    def put_index(self, raw: bytes, media_type: str, *, child: bool = False) -> Digest:
        digest = digest_bytes(raw)
        self._write_bytes(digest, raw)
        self._pending = (Descriptor(media_type, digest, len(raw)), digest)
        return digest

    def commit(self, tags: list[Reference]) -> WriteResult:
        assert self._pending is not None, "commit before put_manifest"
        (desc, image_id), self._pending = self._pending, None
        write_bytes_atomic(self.root / "oci-layout", canonical_json(LAYOUT_FILE))
        names = [self.ref_name] if self.ref_name else [t.tag for t in tags if t.tag]
        try:
            existing = load_json(read_index(self.root).raw, "index.json")
        except InvalidArchive:
            if (self.root / "index.json").exists():
                raise
            existing = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
        entries = [m for m in existing.get("manifests") or [] if not _replaced(m, names, desc)]
        entry = desc.to_json()
        entries += [{**entry, "annotations": {REF_ANNOTATION: n}} for n in names] or [entry]
        existing["manifests"] = entries
        write_bytes_atomic(self.root / "index.json", canonical_json(existing))
        return WriteResult(image_id, desc.digest, desc.size)

    def abort(self) -> None:
        self._pending = None  # blobs written are content-addressed; no index entry names them


class OciArchiveSink(LayoutSink):
    """``oci-archive:<path>``: an OCI layout built in ``staging`` and tarred into ``path`` by ``close()``
    (temp file, fsync, rename); ``discard()`` leaves no file."""

    def __init__(self, path: Path, staging: Path, ref_name: str | None = None) -> None:
        super().__init__(staging, ref_name)
        self.path = path

    def close(self) -> None:
        from strata.transports.tarball import tar_directory

        tar_directory(self.root, self.path)

    def discard(self) -> None:
        return None  # the staging directory is its owner's to remove


def _replaced(entry: dict[str, Any], names: list[str], desc: Descriptor) -> bool:
    """Whether an index.json entry gives way to the new one: the same name, or the same unnamed document."""
    ref = (entry.get("annotations") or {}).get(REF_ANNOTATION)
    if names:
        return ref in names
    return ref is None and entry.get("digest") == str(desc.digest)


class _HashingWriter:
    def __init__(self, out: BinaryIO, algorithm: str) -> None:
        self.out, self.h = out, hasher(algorithm)

    def write(self, data: bytes) -> int:
        self.h.update(data)
        return self.out.write(data)

    def digest(self) -> Digest:
        return Digest(self.h.name, self.h.hexdigest())
