"""A registry as an image source (``registry_image``) and an image sink (``RegistrySink``).

Source: the manifest is fetched by tag or digest; an index (OCI) or manifest list (Docker) picks the
entry for the wanted platform (the host's by default). Layers are ``BlobLayer``s whose blobs stream
from the registry through ``BlobReader`` (verified, resumable).

Sink (the verbs of ``strata.transports.base``): for each layer a ``HEAD`` first (``Layer already exists``), then a
cross-repository mount when ``PushMetadata`` knows the blob is in another repository of the same
registry (``Mounted from x/y``), else an upload (monolithic when small, ``PATCH`` otherwise).
Already-compressed blobs are pushed as they are, so pushing a pulled image reproduces its manifest
digest; uncompressed layers are gzip-compressed while they upload, and the compressed digest is
remembered per registry so the next push of the same layer is a ``HEAD`` away.
"""

from __future__ import annotations

import json
import platform as _platform
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from isal import isal_zlib

from strata.atomicfile import write_bytes_atomic
from strata.digest import Digest, digest_bytes
from strata.distribution.client import READ_CHUNK, RegistryClient
from strata.errors import (
    InvalidArchive,
    NotFound,
    RegistryError,
    StrataError,
    TransportError,
)
from strata.image import mediatypes as mt
from strata.image.api import BlobLayer, Image, Layer
from strata.image.spec import Descriptor, ImageConfig, Index, Manifest, Platform, parse_manifest_or_index
from strata.reference import Reference
from strata.transports.base import MADE_LOCALLY, BlobInfo, Wording, WriteResult

__all__ = [
    "PUSH_WORDING",
    "BlobRecord",
    "PushMetadata",
    "RegistryImage",
    "RegistrySink",
    "RegistrySource",
    "host_platform",
    "registry_image",
    "select_manifest",
]

GZIP_LEVEL = 1
_T = TypeVar("_T")
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
         "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
         "riscv64": "riscv64"}  # fmt: skip


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    arch = _ARCH.get(machine, machine)
    variant = {"aarch64": "v8", "arm64": "v8", "armv7l": "v7", "armv6l": "v6"}.get(machine, "")
    return Platform("linux", arch, variant)


def _platform_matches(have: Platform | None, want: Platform) -> bool:
    if have is None or have.os != want.os or have.architecture != want.architecture:
        return False
    if not want.variant or not have.variant:
        return True
    return have.variant == want.variant


def select_manifest(index: Index, want: Platform) -> Descriptor:
    """The index entry for ``want`` (Docker's error when there is none)."""
    candidates = [d for d in index.manifests if mt.is_manifest(d.media_type) or not d.media_type]
    for d in candidates:
        if _platform_matches(d.platform, want) and d.platform and d.platform.variant == want.variant:
            return d
    for d in candidates:
        if _platform_matches(d.platform, want):
            return d
    raise NotFound(f"no matching manifest for {want} in the manifest list entries")


class RegistryImage:
    """An image in a registry; the config is fetched on first use."""

    def __init__(
        self, client: RegistryClient, repo: str, manifest: Manifest, *, top_digest: Digest, index: Index | None = None
    ) -> None:
        self.client = client
        self.repo = repo
        self.manifest_obj = manifest
        self.top_digest = top_digest
        self.index = index
        self._config: ImageConfig | None = None
        self._lock = threading.Lock()

    def raw_manifest(self) -> bytes:
        return self.manifest_obj.raw

    def manifest(self) -> Manifest:
        return self.manifest_obj

    def raw_config(self) -> bytes:
        return self.config().raw

    def config(self) -> ImageConfig:
        with self._lock:
            if self._config is None:
                desc = self.manifest_obj.config
                raw = self.client.get_small_blob(self.repo, desc.digest)
                self._config = ImageConfig.parse(raw)
            return self._config

    def image_id(self) -> Digest:
        return self.manifest_obj.config.digest

    def digest(self) -> Digest:
        return self.manifest_obj.digest

    def layers(self) -> list[Layer]:
        descs = [d for d in self.manifest_obj.layers if mt.is_layer(d.media_type) or not d.media_type]
        diff_ids = self.config().diff_ids
        if len(diff_ids) != len(descs):
            raise InvalidArchive(
                f"image has {len(descs)} layers but its configuration lists {len(diff_ids)} diff IDs"
            )
        return [BlobLayer(d, self._opener(d), diff_id) for d, diff_id in zip(descs, diff_ids, strict=True)]

    def _opener(self, desc: Descriptor) -> Callable[[], AbstractContextManager[BinaryIO]]:
        def open_blob() -> AbstractContextManager[BinaryIO]:
            return self.client.open_blob(self.repo, desc.digest, desc.size)  # type: ignore[return-value]

        return open_blob


def registry_image(
    client: RegistryClient, repo: str, reference: str, *, platform: Platform | None = None
) -> RegistryImage:
    """The image ``repo:reference`` (a tag or digest), choosing ``platform`` from an index."""
    res = client.get_manifest(repo, reference)
    doc = _parse(res.raw, res.media_type)
    index: Index | None = None
    if isinstance(doc, Index):
        index = doc
        entry = select_manifest(doc, platform or host_platform())
        sub = client.get_manifest(repo, str(entry.digest))
        inner = _parse(sub.raw, sub.media_type or entry.media_type)
        if not isinstance(inner, Manifest):
            raise InvalidArchive("unsupported manifest: nested index")
        manifest = inner
    else:
        manifest = doc
    return RegistryImage(client, repo, manifest, top_digest=res.digest, index=index)


class RegistrySource:
    """``repo:reference`` of ``client``'s registry as a source: one image, or (``copy --all``) its documents."""

    def __init__(self, client: RegistryClient, repo: str, reference: str) -> None:
        self.client, self.repo, self.reference = client, repo, reference

    def image(self, platform: Platform | None = None) -> RegistryImage:
        return registry_image(self.client, self.repo, self.reference, platform=platform)

    def tags(self) -> list[Reference]:
        return []

    def top(self) -> tuple[bytes, str]:
        res = self.client.get_manifest(self.repo, self.reference)
        return res.raw, res.media_type

    def manifest(self, desc: Descriptor) -> bytes:
        return self.client.get_manifest(self.repo, str(desc.digest)).raw  # asked by digest: verified

    def image_of(self, manifest: Manifest) -> RegistryImage:
        return RegistryImage(self.client, self.repo, manifest, top_digest=manifest.digest)


def _parse(raw: bytes, media_type: str) -> Manifest | Index:
    if media_type in (mt.DOCKER_SCHEMA1_MANIFEST, mt.DOCKER_SCHEMA1_SIGNED):
        raise InvalidArchive(
            "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 "
            "support is disabled by default and will be removed in an upcoming release."
        )
    return parse_manifest_or_index(raw, media_type)


# --------------------------------------------------------------------------------------------- push


@dataclass(frozen=True)
class BlobRecord:
    """Where a layer's blob is known to live: ``registry``/``repo`` holds ``digest``."""

    digest: str
    media_type: str
    size: int
    registry: str
    repo: str


class PushMetadata:
    """diff ID → blobs seen in registries (Docker's v2metadata): one small JSON file per diff ID."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def _path(self, diff_id: Digest) -> Path:
        return self.directory / diff_id.algorithm / diff_id.hex

    def lookup(self, diff_id: Digest) -> list[BlobRecord]:
        try:
            data = json.loads(self._path(diff_id).read_text())
        except (OSError, ValueError):
            return []
        out: list[BlobRecord] = []
        for item in data if isinstance(data, list) else []:
            try:
                out.append(BlobRecord(str(item["digest"]), str(item["media_type"]), int(item["size"]),
                                      str(item["registry"]), str(item["repo"])))  # fmt: skip
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def add(self, diff_id: Digest, record: BlobRecord) -> None:
        with self._lock:
            records = [r for r in self.lookup(diff_id) if r != record]
            records.insert(0, record)
            path = self._path(diff_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, json.dumps([r.__dict__ for r in records[:50]]).encode(), mode=0o600)


def _gzip_chunks(stream: BinaryIO) -> Iterator[bytes]:
    comp = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
    while chunk := stream.read(READ_CHUNK):
        out = comp.compress(chunk)
        if out:
            yield out
    yield comp.flush()


def _push_manifest_type(image: Image) -> str:
    """The manifest type a push uses: an image strata committed or imported (no manifest of its own;
    an OCI-typed one is built over its uncompressed layers, compressed on the way) goes as Docker pushes
    every image, schema 2 with ``tar.gzip`` layers; an image that came as OCI stays OCI."""
    manifest = image.manifest()
    local = bool(getattr(image, "extra", {}).get(MADE_LOCALLY))
    if local and manifest.media_type == mt.OCI_MANIFEST and all(d.media_type == mt.OCI_LAYER for d in manifest.layers):
        return mt.DOCKER_MANIFEST
    return manifest.media_type


def _gzip_type(media_type: str, manifest_type: str) -> str:
    if manifest_type == mt.OCI_MANIFEST:
        return mt.OCI_LAYER_GZIP
    return mt.DOCKER_LAYER


PUSH_WORDING = Wording(
    preparing="Preparing", reused="Layer already exists", transfer="Pushing", stored=("Pushed",), by_diff_id=True
)


class RegistrySink:
    """Pushes images (and, for ``copy --all``, whole indexes) to ``repo`` of ``client``'s registry."""

    wording = PUSH_WORDING
    supports_index = True

    def __init__(
        self,
        client: RegistryClient,
        repo: str,
        *,
        concurrency: int = 5,
        metadata: PushMetadata | None = None,
        monolithic_limit: int = 1 << 20,
        chunk_size: int = 0,
        attempts: int = 3,
    ) -> None:
        self.client = client
        self.repo = repo
        self.concurrency = max(1, concurrency)
        self.reuse_concurrency = self.concurrency
        self.metadata = metadata
        self.monolithic_limit = monolithic_limit
        self.chunk_size = chunk_size
        self.attempts = attempts
        self.registry = client.registry
        self._manifest_type = mt.DOCKER_MANIFEST
        self._pending: tuple[bytes, str, Digest | None] | None = None

    # ------------------------------------------------------------------ helpers

    def _records(self, diff_id: Digest) -> list[BlobRecord]:
        if self.metadata is None:
            return []
        return [r for r in self.metadata.lookup(diff_id) if r.registry == self.registry]

    def _remember(self, diff_id: Digest, desc: Descriptor) -> None:
        if self.metadata is not None:
            self.metadata.add(diff_id, BlobRecord(str(desc.digest), desc.media_type, desc.size, self.registry, self.repo))

    def _try_existing(self, digest: Digest, candidates: list[BlobRecord]) -> str:
        """HEAD in the target repo, then mounts from other repos: the status when the blob is now there."""
        if self.client.head_blob(self.repo, digest) is not None:
            return "Layer already exists"
        for rec in candidates:
            if rec.digest != str(digest) or rec.repo == self.repo:
                continue
            try:
                loc = self.client.mount_blob(self.repo, digest, rec.repo)
            except RegistryError:
                continue
            if loc is None:
                return f"Mounted from {rec.repo}"
            self._cancel(loc)
        return ""

    def _cancel(self, location: str) -> None:
        try:
            resp = self.client.request("DELETE", location, scopes=self.client.scopes(self.repo))
            resp.read_limited(64 << 10)
            resp.close()
        except StrataError:
            pass

    def _retrying(self, fn: Callable[[], _T]) -> _T:
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except TransportError:
                if attempt == self.attempts:
                    raise
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ verbs

    def begin(self, image: Image | None = None) -> None:
        self._pending = None
        if image is None:
            self.client.want_push(self.repo)
            return
        self._manifest_type = _push_manifest_type(image)
        diff_ids = image.config().diff_ids
        mount_from = {r.repo for d in diff_ids for r in self._records(d) if r.repo != self.repo}
        self.client.want_push(self.repo, *sorted(mount_from))

    def reuse_blob(self, layer: Layer) -> BlobInfo | None:
        diff_id = layer.diff_id()
        records = self._records(diff_id)
        if mt.layer_compression(layer.media_type()) == "none" and layer.digest() == diff_id:
            # an uncompressed layer is pushed gzip-compressed: a compressed form pushed before may be there
            for rec in records:
                if mt.layer_compression(rec.media_type) == "none":
                    continue
                dg = Digest.parse(rec.digest)
                status = self._try_existing(dg, records)
                if status:
                    desc = Descriptor(_gzip_type(rec.media_type, self._manifest_type), dg, rec.size)
                    self._remember(diff_id, desc)
                    return BlobInfo(desc, status=status)
            return None
        desc = Descriptor(layer.media_type(), layer.digest(), layer.size())
        status = self._try_existing(desc.digest, records)
        if not status:
            return None
        self._remember(diff_id, desc)
        return BlobInfo(desc, status=status)

    def put_blob(self, layer: Layer) -> BlobInfo:
        diff_id = layer.diff_id()
        if mt.layer_compression(layer.media_type()) == "none" and layer.digest() == diff_id:
            desc = self._retrying(lambda: self._upload_compressed(layer))
        else:
            desc = Descriptor(layer.media_type(), layer.digest(), layer.size())

            def chunks() -> Iterator[bytes]:
                with layer.compressed() as f:
                    while chunk := f.read(READ_CHUNK):
                        yield chunk

            self._retrying(
                lambda: self.client.upload_blob(
                    self.repo, desc.digest, desc.size, chunks,
                    monolithic_limit=self.monolithic_limit, chunk_size=self.chunk_size,
                )
            )  # fmt: skip
        self._remember(diff_id, desc)
        return BlobInfo(desc)

    def _upload_compressed(self, layer: Layer) -> Descriptor:
        with layer.uncompressed() as f:
            digest, size = self.client.upload_stream(self.repo, _gzip_chunks(f))
        return Descriptor(_gzip_type(layer.media_type(), self._manifest_type), digest, size)

    def put_config(self, image: Image) -> None:
        cfg_desc = image.manifest().config
        if self.client.head_blob(self.repo, cfg_desc.digest) is None:
            raw_cfg = image.raw_config()
            self.client.upload_blob(self.repo, cfg_desc.digest, len(raw_cfg), lambda: [raw_cfg])

    def put_manifest(self, image: Image, blobs: list[BlobInfo], *, child: bool = False) -> Manifest:
        manifest = image.manifest()
        descs = [b.descriptor for b in blobs]
        mtype = _push_manifest_type(image)
        same = descs == [Descriptor(d.media_type, d.digest, d.size) for d in manifest.layers]
        if mtype != manifest.media_type:
            config = Descriptor(mt.DOCKER_CONFIG, manifest.config.digest, manifest.config.size)
            manifest = Manifest.build(config, descs, mtype)
        elif not same:
            manifest = Manifest.build(manifest.config, descs, manifest.media_type)
        self._hold(manifest.raw, manifest.media_type, child=child, image_id=image.image_id())
        return manifest

    def put_index(self, raw: bytes, media_type: str, *, child: bool = False) -> Digest:
        self._hold(raw, media_type, child=child, image_id=None)
        return digest_bytes(raw)

    def _hold(self, raw: bytes, media_type: str, *, child: bool, image_id: Digest | None) -> None:
        """A child document is put by digest now; the top one waits for ``commit`` to name it."""
        if child:
            self.client.put_manifest(self.repo, str(digest_bytes(raw)), raw, media_type)
        else:
            self._pending = (raw, media_type, image_id)

    def commit(self, tags: list[Reference]) -> WriteResult:
        assert self._pending is not None, "commit before put_manifest"
        raw, media_type, image_id = self._pending
        refs = [t.tag for t in tags if t.tag] or [str(digest_bytes(raw))]
        digest = None
        for ref in refs:
            digest = self.client.put_manifest(self.repo, ref, raw, media_type)
        assert digest is not None
        self._pending = None
        return WriteResult(image_id or digest, digest, len(raw))

    def abort(self) -> None:
        self._pending = None  # blobs already uploaded are unreferenced: the registry's GC takes them
