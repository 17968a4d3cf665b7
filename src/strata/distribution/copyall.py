"""``copy --all``: a whole index (OCI image index / Docker manifest list) between places that hold raw blobs.

Unlike the ``Image``/``ImageSink`` copy (one image, possibly re-encoded), this copies documents byte for
byte: every child manifest with its config and layers, then the index itself, so every digest is
preserved. Places are a registry repository (``RegistryPlace``) and an OCI image layout directory
(``LayoutPlace``; ``oci-archive:`` is a layout tarred at the end by the caller). Blobs shared between
children are copied once; the layers of one manifest ``concurrency`` at a time. Progress lines are
skopeo's (``Copying 2 of 2 images in list``, ``Copying blob sha256:…``, ``Writing manifest list …``). A place writes blobs
before the manifests naming them, and the top document last, so a failed copy never leaves a tag or
an ``index.json`` entry pointing at missing content.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from strata import mediatypes as mt
from strata.atomicfile import open_atomic, write_bytes_atomic
from strata.digest import Digest, digest_bytes, hasher
from strata.distribution.client import MAX_MANIFEST_SIZE, READ_CHUNK, RegistryClient
from strata.errors import DigestMismatch, ImageNotFound, InvalidArchive
from strata.spec import Descriptor, Index, Manifest, canonical_json, parse_manifest_or_index

__all__ = [
    "CopyAllResult",
    "LayoutPlace",
    "Place",
    "RegistryPlace",
    "copy_all",
    "is_index",
]

REF_ANNOTATION = "org.opencontainers.image.ref.name"


class Place(Protocol):
    """Somewhere manifests and blobs live, addressed by digest (plus one named top document)."""

    def top(self) -> tuple[bytes, str]:
        """The named document (raw bytes, media type): what the transport reference points at."""
        ...

    def manifest(self, desc: Descriptor) -> bytes: ...

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[BinaryIO]: ...

    def has_blob(self, desc: Descriptor) -> bool: ...

    def put_blob(self, desc: Descriptor, source: Place) -> None: ...

    def put_manifest(self, raw: bytes, media_type: str, *, top: bool) -> Digest: ...


def is_index(raw: bytes, media_type: str) -> bool:
    return isinstance(parse_manifest_or_index(raw, media_type), Index)


# ------------------------------------------------------------------------------------------- registry


class RegistryPlace:
    """``repo`` on ``client``'s registry; ``reference`` is the tag (or digest) of the top document."""

    def __init__(self, client: RegistryClient, repo: str, reference: str) -> None:
        self.client, self.repo, self.reference = client, repo, reference

    def top(self) -> tuple[bytes, str]:
        res = self.client.get_manifest(self.repo, self.reference)
        return res.raw, res.media_type

    def manifest(self, desc: Descriptor) -> bytes:
        # asked by digest: the client verifies the bytes against it
        return self.client.get_manifest(self.repo, str(desc.digest)).raw

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[BinaryIO]:
        return self.client.open_blob(self.repo, desc.digest, desc.size)  # type: ignore[return-value]

    def has_blob(self, desc: Descriptor) -> bool:
        return self.client.head_blob(self.repo, desc.digest) is not None

    def put_blob(self, desc: Descriptor, source: Place) -> None:
        def chunks() -> Iterator[bytes]:
            with source.open_blob(desc) as f:
                while chunk := f.read(READ_CHUNK):
                    yield chunk

        self.client.upload_blob(self.repo, desc.digest, desc.size, chunks)

    def put_manifest(self, raw: bytes, media_type: str, *, top: bool) -> Digest:
        ref = self.reference if top and not Digest.is_valid(self.reference) else str(digest_bytes(raw))
        return self.client.put_manifest(self.repo, ref, raw, media_type)


# ------------------------------------------------------------------------------------------- OCI layout


def _verify(data: bytes, desc: Descriptor) -> bytes:
    if digest_bytes(data, desc.digest.algorithm) != desc.digest:
        raise DigestMismatch(f"manifest verification failed for digest {desc.digest}")
    return data


class LayoutPlace:
    """An OCI image layout directory; ``ref_name`` names the top document in ``index.json``."""

    def __init__(self, root: Path, ref_name: str | None) -> None:
        self.root, self.ref_name = root, ref_name
        self._lock = threading.Lock()

    def _path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.hex

    def _index(self) -> dict[str, Any] | None:
        """The layout's ``index.json`` (None when there is none yet)."""
        try:
            index = json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise InvalidArchive(f"invalid image layout {self.root}: index.json: {e}") from None
        if not isinstance(index, dict):
            raise InvalidArchive(f"invalid image layout {self.root}: index.json: not a JSON object")
        return index

    def top(self) -> tuple[bytes, str]:
        index = self._index()
        if index is None:
            raise InvalidArchive(f"invalid image layout {self.root}: index.json is missing")
        entries = [Descriptor.from_json(d) for d in index.get("manifests") or []]
        if self.ref_name is not None:
            entries = [d for d in entries if (d.annotations or {}).get(REF_ANNOTATION) == self.ref_name]
        if not entries:
            raise ImageNotFound(f"{self.ref_name or 'an image'} in OCI layout {self.root}")
        if len(entries) > 1:
            raise InvalidArchive(f"OCI layout {self.root} holds {len(entries)} images: name one")
        desc = entries[0]
        return self.manifest(desc), desc.media_type

    def manifest(self, desc: Descriptor) -> bytes:
        path = self._path(desc.digest)
        try:
            if path.stat().st_size > MAX_MANIFEST_SIZE:
                raise InvalidArchive(f"invalid image layout: manifest {desc.digest} is larger than 4 MiB")
            return _verify(path.read_bytes(), desc)
        except FileNotFoundError:
            raise InvalidArchive(f"invalid image layout: blob {desc.digest} is missing") from None

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[BinaryIO]:
        try:
            return open(self._path(desc.digest), "rb")
        except FileNotFoundError:
            raise InvalidArchive(f"invalid image layout: blob {desc.digest} is missing") from None

    def has_blob(self, desc: Descriptor) -> bool:
        return self._path(desc.digest).is_file()

    def _write(self, digest: Digest, fill: Callable[[BinaryIO], None]) -> None:
        """Atomically store a blob, verifying it against ``digest`` on the way."""
        path = self._path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open_atomic(path) as raw:
            h = hasher(digest.algorithm)
            fill(_HashingWriter(raw, h))  # type: ignore[arg-type]
            if h.hexdigest() != digest.hex:
                raise DigestMismatch(f"blob verification failed for digest {digest}")

    def put_blob(self, desc: Descriptor, source: Place) -> None:
        def fill(out: BinaryIO) -> None:
            with source.open_blob(desc) as f:
                while chunk := f.read(READ_CHUNK):
                    out.write(chunk)

        self._write(desc.digest, fill)

    def put_manifest(self, raw: bytes, media_type: str, *, top: bool) -> Digest:
        digest = digest_bytes(raw)
        def fill(out: BinaryIO) -> None:
            out.write(raw)

        if not self._path(digest).is_file():
            self._write(digest, fill)
        if top:
            self._add_to_index(Descriptor(media_type, digest, len(raw)))
        return digest

    def _add_to_index(self, desc: Descriptor) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.root / "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))
        with self._lock:
            index = self._index() or {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
            entries = [
                m for m in index.get("manifests") or []
                if self.ref_name is None or (m.get("annotations") or {}).get(REF_ANNOTATION) != self.ref_name
            ]  # fmt: skip
            entry = desc.to_json()
            if self.ref_name:
                entry["annotations"] = {REF_ANNOTATION: self.ref_name}
            index["manifests"] = [*entries, entry]
            write_bytes_atomic(self.root / "index.json", canonical_json(index))


class _HashingWriter:
    def __init__(self, out: BinaryIO, h: object) -> None:
        self.out, self.h = out, h

    def write(self, data: bytes) -> int:
        self.h.update(data)  # type: ignore[attr-defined]
        return self.out.write(data)


# ------------------------------------------------------------------------------------------- the copy


@dataclass(frozen=True)
class CopyAllResult:
    digest: Digest  # of the top document, as copied (unchanged)
    media_type: str
    images: int  # image manifests copied


class _Copier:
    def __init__(self, src: Place, dst: Place, message: Callable[[str], None], concurrency: int) -> None:
        self.src, self.dst, self.message, self.concurrency = src, dst, message, max(1, concurrency)
        self._done: set[Digest] = set()
        self._lock = threading.Lock()
        self.images = 0

    def _blob(self, desc: Descriptor) -> None:
        with self._lock:
            if desc.digest in self._done:
                return
            self._done.add(desc.digest)
        if not self.dst.has_blob(desc):
            self.dst.put_blob(desc, self.src)

    def image(self, raw: bytes, doc: Manifest, *, top: bool) -> Digest:
        self.message("Getting image source signatures")
        blobs = [d for d in doc.layers if not d.urls]  # foreign layers stay where their URLs say
        for d in blobs:
            self.message(f"Copying blob {d.digest}")
        with ThreadPoolExecutor(self.concurrency) as pool:
            for fut in [pool.submit(self._blob, d) for d in blobs]:
                fut.result()
        self.message(f"Copying config {doc.config.digest}")
        self._blob(doc.config)
        self.message("Writing manifest to image destination")
        digest = self.dst.put_manifest(raw, doc.media_type, top=top)
        self.message("Storing signatures")
        self.images += 1
        return digest

    def node(self, raw: bytes, media_type: str, *, top: bool) -> Digest:
        doc = parse_manifest_or_index(raw, media_type)
        if isinstance(doc, Manifest):
            return self.image(raw, doc, top=top)
        self.message("Getting image list signatures")
        n = len(doc.manifests)
        self.message(f"Copying {n} of {n} images in list")
        for i, child in enumerate(doc.manifests, 1):
            self.message(f"Copying image {child.digest} ({i}/{n})")
            child_raw = self.src.manifest(child)
            self.node(child_raw, child.media_type, top=False)
        self.message("Writing manifest list to image destination")
        digest = self.dst.put_manifest(raw, doc.media_type, top=top)
        self.message("Storing list signatures")
        return digest


def copy_all(
    src: Place,
    dst: Place,
    *,
    message: Callable[[str], None] = lambda _: None,
    concurrency: int = 3,
    top: tuple[bytes, str] | None = None,
) -> CopyAllResult:
    """Copy ``src``'s top document and everything it names into ``dst``, digests unchanged."""
    raw, media_type = top or src.top()
    copier = _Copier(src, dst, message, concurrency)
    digest = copier.node(raw, media_type, top=True)
    if digest != digest_bytes(raw):
        raise DigestMismatch(f"destination stored the copy under {digest}, not {digest_bytes(raw)}")
    doc = parse_manifest_or_index(raw, media_type)
    return CopyAllResult(digest, doc.media_type, copier.images)
