"""``oci:`` — an OCI image layout directory (oci-layout, index.json, blobs/sha256/<hex>) as a source and a sink."""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from strata import mediatypes as mt
from strata.digest import Digest, digest_bytes
from strata.errors import ImageNotFound, InvalidArchive
from strata.image.api import BlobLayer, Image, Layer, SimpleImage
from strata.reference import Reference, parse_normalized_named
from strata.spec import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    canonical_json,
    parse_manifest_or_index,
)
from strata.transports.base import NO_PROGRESS, Progress, ProgressEvent, WriteResult

__all__ = [
    "LAYOUT_FILE",
    "LayoutSink",
    "host_platform",
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


def layout_image(root: Path, desc: Descriptor, platform: Platform | None = None) -> Image:
    raw = _read_blob(root, desc)
    doc = parse_manifest_or_index(raw, desc.media_type)
    if isinstance(doc, Index):
        return layout_image(root, select_platform(doc, platform), platform)
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


def _tags_of(desc: Descriptor) -> list[Reference]:
    ann = desc.annotations or {}
    name = ann.get(NAME_ANNOTATION) or ""
    ref_name = ann.get(REF_ANNOTATION) or ""
    for candidate in (name, ref_name):
        if candidate and ("/" in candidate or ":" in candidate):
            try:
                ref = parse_normalized_named(candidate)
            except InvalidArchive:
                continue
            except Exception:
                continue
            if ref.tag is not None:
                return [ref]
    return []


def read_index(root: Path) -> Index:
    try:
        raw = (root / "index.json").read_bytes()
    except FileNotFoundError:
        raise InvalidArchive("invalid image layout: index.json is missing") from None
    return Index.parse(raw, mt.OCI_INDEX)


def layout_images(
    root: Path, *, ref_name: str | None = None, platform: Platform | None = None
) -> list[tuple[Image, list[Reference]]]:
    """Every image an OCI layout's index.json names (or the one named ``ref_name``), with its tags."""
    index = read_index(root)
    out: list[tuple[Image, list[Reference]]] = []
    for desc in index.manifests:
        ann = desc.annotations or {}
        if ref_name is not None and ref_name not in (ann.get(REF_ANNOTATION), ann.get(NAME_ANNOTATION)):
            continue
        out.append((layout_image(root, desc, platform), _tags_of(desc)))
    if ref_name is not None and not out:
        raise ImageNotFound(f"{ref_name} in OCI layout {root}")
    return out


class LayoutSink:
    """Writes images into an OCI layout directory; index.json is replaced atomically at the end."""

    def __init__(self, root: Path, ref_name: str | None = None) -> None:
        self.root = root
        self.ref_name = ref_name

    def _put(self, digest: Digest, writer: Any) -> None:
        path = _blob_path(self.root, digest)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def write(self, image: Image, tags: list[Reference], progress: Progress = NO_PROGRESS) -> WriteResult:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_bytes(canonical_json(LAYOUT_FILE))
        for layer in image.layers():
            progress(ProgressEvent(layer.digest().short, "Copying blob"))

            def copy(f: BinaryIO, layer: Layer = layer) -> None:
                import shutil

                with layer.compressed() as src:
                    shutil.copyfileobj(src, f, 1 << 20)

            self._put(layer.digest(), copy)
        self._put(image.image_id(), lambda f: f.write(image.raw_config()))
        manifest: Manifest = image.manifest()
        self._put(manifest.digest, lambda f: f.write(manifest.raw))
        self._update_index(manifest, tags)
        return WriteResult(image.image_id(), manifest.digest, len(manifest.raw))

    def _update_index(self, manifest: Manifest, tags: list[Reference]) -> None:
        try:
            existing = json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError:
            existing = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
        names = [self.ref_name] if self.ref_name else [t.tag for t in tags if t.tag]
        entries = [
            m for m in existing.get("manifests", [])
            if not names or (m.get("annotations") or {}).get(REF_ANNOTATION) not in names
        ]
        desc = manifest.descriptor().to_json()
        if names:
            for n in names:
                entries.append({**desc, "annotations": {REF_ANNOTATION: n}})
        else:
            entries.append(desc)
        existing["manifests"] = entries
        tmp = self.root / f".index.json.tmp{os.getpid()}"
        tmp.write_bytes(canonical_json(existing))
        os.replace(tmp, self.root / "index.json")
