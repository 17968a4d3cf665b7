"""What the UI shows, read from the registry's storage: repository summaries, tags, manifests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strata.digest import Digest
from strata.errors import InvalidArchive, InvalidDigest
from strata.image import mediatypes as mt
from strata.image.spec import load_json
from strata.server.storage import paths
from strata.server.storage.driver import PathNotFound
from strata.server.storage.registry import Repository

__all__ = [
    "Layer", "ManifestView", "RepoSummary", "TagRow", "manifest_view", "repo_summary", "storage_used", "tag_rows",
]


@dataclass
class RepoSummary:
    name: str
    tags: int
    size: int
    last_push: float


@dataclass
class TagRow:
    tag: str
    digest: Digest
    media_type: str
    size: int
    created: str
    platforms: list[str]
    pushed: float
    blobs: dict[str, int] = field(default_factory=dict, repr=False)


@dataclass
class Layer:
    media_type: str
    digest: str
    size: int


@dataclass
class ManifestView:
    digest: Digest
    media_type: str
    raw: bytes
    size: int = 0
    layers: list[Layer] = field(default_factory=list)
    children: list[tuple[str, Layer]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    config_digest: str = ""
    artifact_type: str = ""
    referrers: list[tuple[str, Layer]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def _doc(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        doc = load_json(data, "manifest")
    except InvalidArchive:
        return {}
    return doc if isinstance(doc, dict) else {}


def _descs(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key)
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []


def _digest(desc: dict[str, Any]) -> Digest | None:
    try:
        return Digest.parse(str(desc.get("digest", "")))
    except InvalidDigest:
        return None


def _size(desc: dict[str, Any]) -> int:
    size = desc.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0


def _media(doc: dict[str, Any]) -> str:
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    return mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST


_MAX_CONFIG_SIZE = 4 << 20


def _config(repo: Repository, doc: dict[str, Any]) -> dict[str, Any]:
    """The image configuration a manifest names, when it is small: its size is the stored blob's (the
    manifest's descriptor may lie), so a page view never reads a huge blob into memory."""
    cfg = doc.get("config")
    d = _digest(cfg) if isinstance(cfg, dict) else None
    info = repo.blobs.stat(d) if d is not None else None
    if d is None or info is None or info.size > _MAX_CONFIG_SIZE:
        return {}
    return _doc(repo.blobs.blobs.get(d))


def _platform(cfg: dict[str, Any], desc: dict[str, Any] | None = None) -> str:
    src = desc.get("platform") if desc is not None else cfg
    if not isinstance(src, dict):
        return ""
    parts = [str(src.get(k) or "") for k in ("os", "architecture", "variant")]
    return "/".join(p for p in parts if p)


def _blobs(doc: dict[str, Any]) -> dict[str, int]:
    """Digest -> size of the config and layers an image manifest references."""
    cfg = doc.get("config")
    descs = ([cfg] if isinstance(cfg, dict) else []) + _descs(doc, "layers")
    return {str(d.get("digest", "")): _size(d) for d in descs}


def _image_size(doc: dict[str, Any]) -> int:
    return sum(_blobs(doc).values())


def _tag_row(repo: Repository, tag: str, d: Digest) -> TagRow:
    doc = _doc(repo.manifests.get(d))
    media = _media(doc)
    pushed = _mtime(repo, paths.tag_current_link(repo.name, tag))
    if media not in mt.INDEX_TYPES:
        cfg = _config(repo, doc)
        plat = _platform(cfg)
        blobs = _blobs(doc)
        return TagRow(tag, d, media, sum(blobs.values()), str(cfg.get("created") or ""), [plat] if plat else [],
                      pushed, blobs)
    children = _descs(doc, "manifests")
    platforms = [p for p in (_platform({}, c) for c in children) if p and p != "unknown/unknown"]
    blobs, created = {}, ""
    for c in children:
        cd = _digest(c)
        child = _doc(repo.manifests.get(cd)) if cd is not None else {}
        blobs.update(_blobs(child))
        if child:
            created = max(created, str(_config(repo, child).get("created") or ""))
    return TagRow(tag, d, media, sum(blobs.values()), created, platforms, pushed, blobs)


def _mtime(repo: Repository, path: str) -> float:
    try:
        return repo.manifests.driver.stat(path).mtime
    except PathNotFound:
        return 0.0


def tag_rows(repo: Repository) -> list[TagRow]:
    return [_tag_row(repo, tag, d) for tag, d in sorted(repo.tags.mapping().items())]


def storage_used(rows: list[TagRow]) -> int:
    """Size of the distinct blobs the tags reference (a layer shared by tags counted once)."""
    blobs: dict[str, int] = {}
    for row in rows:
        blobs.update(row.blobs)
    return sum(blobs.values())


def repo_summary(repo: Repository) -> RepoSummary:
    """Tag count, storage used by its tags (shared layers once), last push."""
    rows = tag_rows(repo)
    return RepoSummary(repo.name, len(rows), storage_used(rows), max((r.pushed for r in rows), default=0.0))


def manifest_view(repo: Repository, d: Digest) -> ManifestView | None:
    raw = repo.manifests.get(d)
    if raw is None:
        return None
    doc = _doc(raw)
    view = ManifestView(d, _media(doc), raw, tags=repo.tags.lookup(d))
    view.layers = [Layer(str(x.get("mediaType", "")), str(x.get("digest", "")), _size(x))
                   for x in _descs(doc, "layers")]
    view.children = [(_platform({}, c), Layer(str(c.get("mediaType", "")), str(c.get("digest", "")), _size(c)))
                     for c in _descs(doc, "manifests")]
    cfg = doc.get("config")
    if isinstance(cfg, dict):
        view.config_digest = str(cfg.get("digest", ""))
        cfg_type = str(cfg.get("mediaType") or "")
        image_config = cfg_type in (mt.OCI_CONFIG, mt.DOCKER_CONFIG)
        view.artifact_type = str(doc.get("artifactType") or ("" if image_config else cfg_type))
    view.config = _config(repo, doc)
    view.size = _image_size(doc)
    view.referrers = _referrers(repo, d)
    return view


def _referrers(repo: Repository, d: Digest) -> list[tuple[str, Layer]]:
    out = []
    for r in repo.manifests.referrers(d):
        data = repo.manifests.get(r)
        doc = _doc(data)
        cfg = doc.get("config")
        art = doc.get("artifactType") or (cfg.get("mediaType") if isinstance(cfg, dict) else "") or ""
        out.append((str(art), Layer(_media(doc), str(r), len(data or b""))))
    return out
