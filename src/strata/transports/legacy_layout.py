"""The members of Docker 20.10's ``docker save`` archive, in its order, streamed into a tar.

Docker (moby ``image/tarexport/save.go``) writes a temp directory and tars it, so the archive is in name
order: ``<config hex>.json`` and ``<v1 id>/`` (``VERSION`` = ``1.0``, ``json``, ``layer.tar``) sorted
together, then ``manifest.json`` and ``repositories`` (both JSON with a newline, mtime 0). A layer
directory saved once per v1 ID; a diff ID seen before becomes a ``layer.tar`` symlink to the first
(``../<v1 id>/layer.tar``) in a directory Docker leaves with the time of the save. Other members carry
the saving image's created time."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from strata.digest import Digest, HashingReader
from strata.image.api import Layer
from strata.reference import Reference
from strata.transports.gotar import GoTarWriter
from strata.transports.legacy_v1 import V1Layer, go_json_string

__all__ = ["SavedImage", "write_legacy"]


class SavedImage(Protocol):
    """What the writer needs of one saved image."""

    image_id: Digest
    config: bytes
    created: int
    parent: Digest | None
    v1: list[V1Layer]
    layers: dict[Digest, Layer]
    tags: list[Reference]


class _Dir:
    """A ``<v1 id>/`` directory: its layer's data, or the directory whose layer.tar it links to."""

    __slots__ = ("layer", "link", "mtime", "v1")

    def __init__(self, v1: V1Layer, mtime: int, layer: Layer | None, link: str) -> None:
        self.v1, self.mtime, self.layer, self.link = v1, mtime, layer, link


def _plan(images: Sequence[SavedImage], now: int) -> dict[str, _Dir | tuple[bytes, int]]:
    """Top-level names to what is written there, in Docker's order of saving (images, then layers)."""
    members: dict[str, _Dir | tuple[bytes, int]] = {}
    first: dict[Digest, str] = {}
    for image in images:
        for v1 in image.v1:
            if v1.v1_id in members:
                continue
            if v1.diff_id in first:
                members[v1.v1_id] = _Dir(v1, now, None, f"../{first[v1.diff_id]}/layer.tar")
            else:
                first[v1.diff_id] = v1.v1_id
                members[v1.v1_id] = _Dir(v1, image.created, image.layers[v1.diff_id], "")
        members[f"{image.image_id.hex}.json"] = (image.config, image.created)
    return members


def _manifest(images: Sequence[SavedImage]) -> bytes:
    """``manifest.json`` as Go's json.Encoder writes moby's manifestItem list (RepoTags null when none;
    Parent only when the parent image is saved too)."""
    ids = {image.image_id for image in images}
    items = []
    for image in images:
        tags = "[" + ",".join(go_json_string(t.familiar_string()) for t in image.tags) + "]" if image.tags else "null"
        layers = ",".join(go_json_string(f"{v1.v1_id}/layer.tar") for v1 in image.v1)
        item = f'{{"Config":{go_json_string(image.image_id.hex + ".json")},"RepoTags":{tags},"Layers":[{layers}]'
        if image.parent is not None and image.parent in ids and image.parent != image.image_id:
            item += f',"Parent":{go_json_string(str(image.parent))}'
        items.append(item + "}")
    return ("[" + ",".join(items) + "]\n").encode()


def _repositories(images: Sequence[SavedImage]) -> bytes | None:
    """``repositories``: familiar name -> tag -> the top layer's v1 ID (maps sorted, as Go's encoder)."""
    repos: dict[str, dict[str, str]] = {}
    for image in images:
        for t in image.tags:
            repos.setdefault(t.familiar, {})[t.tag or "latest"] = image.v1[-1].v1_id
    if not repos:
        return None
    body = ",".join(
        f"{go_json_string(name)}:{{"
        + ",".join(f"{go_json_string(tag)}:{go_json_string(v1)}" for tag, v1 in sorted(tags.items()))
        + "}"
        for name, tags in sorted(repos.items())
    )
    return ("{" + body + "}\n").encode()


def _layer(tar: GoTarWriter, name: str, layer: Layer, size: int, mtime: int) -> None:
    """The uncompressed layer, streamed; verified against its diff ID unless stored under it."""
    diff_id = layer.diff_id()
    with layer.uncompressed() as stream:
        if layer.digest() == diff_id:
            tar.add_file_stream(name, stream, size, mtime)  # content-addressed: verified when stored
        else:
            reader = HashingReader(stream, diff_id, size)
            tar.add_file_stream(name, reader, size, mtime)
            reader.verify()


def write_legacy(tar: GoTarWriter, images: Sequence[SavedImage], sizes: dict[Digest, int], now: Any = None) -> None:
    """Every member of the archive, in name order (the caller closes ``tar``)."""
    members = _plan(images, int(time.time() if now is None else now))
    for name in sorted(members):
        entry = members[name]
        if isinstance(entry, tuple):
            tar.add_file(name, entry[0], entry[1])
            continue
        tar.add_dir(name, entry.mtime)
        tar.add_file(f"{name}/VERSION", b"1.0", entry.mtime)
        tar.add_file(f"{name}/json", entry.v1.json, entry.mtime)
        if entry.layer is None:
            tar.add_link(f"{name}/layer.tar", entry.link, entry.mtime)
        else:
            _layer(tar, f"{name}/layer.tar", entry.layer, sizes[entry.v1.diff_id], entry.mtime)
    tar.add_file("manifest.json", _manifest(images), 0)
    repositories = _repositories(images)
    if repositories is not None:
        tar.add_file("repositories", repositories, 0)
