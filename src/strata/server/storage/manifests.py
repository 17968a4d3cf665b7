"""Manifests of one repository (revision links) and the referrers index, plus manifest parsing."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from strata.digest import Digest
from strata.errors import InvalidArchive, InvalidDigest, StrataError
from strata.image import mediatypes as mt
from strata.image.spec import load_json
from strata.server.storage import paths
from strata.server.storage.blobstore import BlobStore, linked_digests, read_link, write_link
from strata.server.storage.driver import PathNotFound

__all__ = ["REVISION_TRUST", "ManifestInvalid", "ManifestStore", "ParsedManifest", "RecentRevisions", "parse_manifest"]

REVISION_TRUST = 1.0  # seconds a revision link read still vouches for a manifest reached by tag (remote storage)

SCHEMA1_TYPES = (mt.DOCKER_SCHEMA1_MANIFEST, mt.DOCKER_SCHEMA1_SIGNED, "application/json")


class ManifestInvalid(StrataError):
    """The body is not an acceptable manifest; ``str()`` says why."""


@dataclass
class ParsedManifest:
    media_type: str
    blobs: list[Digest] = field(default_factory=list)
    children: list[Digest] = field(default_factory=list)
    subject: Digest | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    foreign: list[Digest] = field(default_factory=list)


def _descriptor_digest(desc: object, what: str) -> tuple[Digest, dict[str, object]]:
    if not isinstance(desc, dict):
        raise ManifestInvalid(f"{what} is not a descriptor")
    try:
        d = Digest.parse(str(desc.get("digest", "")))
    except InvalidDigest:
        raise ManifestInvalid(f"{what} has an invalid digest")
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{what} has an invalid size")
    return d, desc


def _sniff_type(doc: dict[str, object]) -> str:
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc:
        return mt.OCI_MANIFEST
    if "fsLayers" in doc or doc.get("schemaVersion") == 1:
        return mt.DOCKER_SCHEMA1_MANIFEST
    raise ManifestInvalid("unknown manifest type")


def parse_manifest(data: bytes, content_type: str | None) -> ParsedManifest:
    """Check a manifest body and list what it references; raises ``ManifestInvalid``."""
    try:
        doc = load_json(data, "manifest")
    except InvalidArchive as e:
        raise ManifestInvalid(str(e)) from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest is not a JSON object")
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise ManifestInvalid("mediaType is not a string")
    ctype = (content_type or "").split(";")[0].strip()
    if ctype in ("", "application/octet-stream"):
        ctype = ""
    media_type = body_type or ctype or _sniff_type(doc)
    if ctype and body_type and ctype != body_type and ctype not in SCHEMA1_TYPES:
        raise ManifestInvalid(f"mediaType {body_type!r} does not match Content-Type {ctype!r}")
    if media_type in SCHEMA1_TYPES or doc.get("schemaVersion") == 1:
        raise ManifestInvalid("schema 1 manifests are not supported; push with a schema 2 or OCI client")
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    if ctype and ctype != media_type and not body_type:
        media_type = ctype
    parsed = ParsedManifest(media_type)
    if media_type in mt.MANIFEST_TYPES:
        _parse_image(doc, parsed)
    elif media_type in mt.INDEX_TYPES:
        _parse_index(doc, parsed)
    else:
        raise ManifestInvalid(f"unsupported manifest media type {media_type!r}")
    if "subject" in doc and doc["subject"] is not None:
        parsed.subject, _ = _descriptor_digest(doc["subject"], "subject")
    at = doc.get("artifactType")
    if isinstance(at, str) and at:
        parsed.artifact_type = at
    ann = doc.get("annotations")
    parsed.annotations = ann if isinstance(ann, dict) else None
    return parsed


def _parse_image(doc: dict[str, object], parsed: ParsedManifest) -> None:
    d, cfg = _descriptor_digest(doc.get("config"), "config")
    parsed.blobs.append(d)
    if isinstance(cfg.get("mediaType"), str):
        parsed.artifact_type = str(cfg["mediaType"])
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise ManifestInvalid("layers is not a list")
    for i, layer in enumerate(layers):
        d, desc = _descriptor_digest(layer, f"layer {i}")
        if desc.get("urls"):
            parsed.foreign.append(d)
        else:
            parsed.blobs.append(d)


def _parse_index(doc: dict[str, object], parsed: ParsedManifest) -> None:
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise ManifestInvalid("manifests is not a list")
    for i, m in enumerate(manifests):
        d, _ = _descriptor_digest(m, f"manifest {i}")
        parsed.children.append(d)


class RecentRevisions:
    """(repository, digest) pairs whose revision link this process read in the last ``ttl`` seconds.

    A manifest reached by tag needs no second round trip for its revision link while one was just
    read: a tag is only set to a manifest whose revision link was written first, and a manifest's
    tags are removed before its revision link (DELETE here and in distribution; GC never deletes a
    tagged manifest), so the tag link read for every GET is what sees a delete at once. Only a race
    between a DELETE by digest and a push re-tagging the same digest can leave a tag without its
    revision; such a tag is answered as unknown again within ``ttl``. GETs by digest always read
    the revision link."""

    def __init__(self, ttl: float = REVISION_TRUST, max_items: int = 10_000) -> None:
        self.ttl, self.max_items = ttl, max_items
        self._seen: dict[tuple[str, Digest], float] = {}
        self._lock = threading.Lock()

    def fresh(self, repo: str, d: Digest) -> bool:
        seen = self._seen.get((repo, d))
        return seen is not None and time.monotonic() - seen < self.ttl

    def saw(self, repo: str, d: Digest) -> None:
        with self._lock:
            if len(self._seen) >= self.max_items:
                self._seen.clear()
            self._seen[(repo, d)] = time.monotonic()

    def drop(self, repo: str, d: Digest) -> None:
        with self._lock:
            self._seen.pop((repo, d), None)


class ManifestStore:
    """One repository's manifests: content in the blob store, revision links here."""

    def __init__(self, blobs: BlobStore, name: str, recent: RecentRevisions | None = None) -> None:
        self.blobs = blobs
        self.driver = blobs.driver
        self.name = name
        self.recent = recent

    def exists(self, d: Digest) -> bool:
        return read_link(self.driver, paths.revision_link(self.name, d)) == d and self.blobs.stat(d) is not None

    def get(self, d: Digest, tagged: bool = False) -> bytes | None:
        """The manifest if this repository holds it; ``tagged``: ``d`` was just read from one of its
        tags, so a revision link read moments ago still vouches (see ``RecentRevisions``)."""
        recent = self.recent
        if not (tagged and recent is not None and recent.fresh(self.name, d)):
            if read_link(self.driver, paths.revision_link(self.name, d)) != d:
                if recent is not None:
                    recent.drop(self.name, d)
                return None
            if recent is not None:
                recent.saw(self.name, d)
        return self.blobs.get(d, vouched=True)  # the revision link vouches for the (immutable) content

    def put(self, data: bytes, algorithm: str = "sha256") -> Digest:
        d = self.blobs.put(data, algorithm)
        write_link(self.driver, paths.revision_link(self.name, d), d)
        return d

    def delete(self, d: Digest) -> bool:
        if self.recent is not None:
            self.recent.drop(self.name, d)
        try:
            self.driver.delete(paths.revision_link(self.name, d).rsplit("/", 1)[0])
        except PathNotFound:
            return False
        return True

    def revision_mtime(self, d: Digest) -> float:
        try:
            return self.driver.stat(paths.revision_link(self.name, d)).mtime
        except PathNotFound:
            return 0.0

    def all(self) -> list[Digest]:
        return linked_digests(self.driver, paths.revisions_dir(self.name))

    def add_referrer(self, subject: Digest, d: Digest) -> None:
        write_link(self.driver, paths.referrer_link(self.name, subject, d), d)

    def remove_referrer(self, subject: Digest, d: Digest) -> None:
        try:
            self.driver.delete(paths.referrer_link(self.name, subject, d).rsplit("/", 1)[0])
        except PathNotFound:
            pass

    def referrers(self, subject: Digest) -> list[Digest]:
        return [d for d in linked_digests(self.driver, paths.referrers_dir(self.name, subject)) if self.exists(d)]
