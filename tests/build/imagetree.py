"""An image's flattened file tree and config, read from a ``save`` archive (Docker's or strata's)."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tarfile
from pathlib import Path
from typing import Any

Entry = tuple[str, int, int, int, str]  # kind, mode, uid, gid, sha256 or link target


def _kind(m: tarfile.TarInfo) -> str:
    return "dir" if m.isdir() else "link" if m.issym() else "hard" if m.islnk() else "file" if m.isfile() else "other"


def _apply(tree: dict[str, Entry], layer: tarfile.TarFile) -> None:
    for m in layer:
        name = posixpath.normpath(m.name.lstrip("./") or ".")
        base = posixpath.basename(name)
        parent = posixpath.dirname(name)
        if base == ".wh..wh..opq":
            for key in [k for k in tree if k.startswith(parent + "/")]:
                del tree[key]
            continue
        if base.startswith(".wh."):
            gone = posixpath.join(parent, base[4:])
            for key in [k for k in tree if k == gone or k.startswith(gone + "/")]:
                del tree[key]
            continue
        if m.isfile():
            f = layer.extractfile(m)
            digest = hashlib.sha256(f.read() if f else b"").hexdigest()
        else:
            digest = m.linkname
        if not m.isdir():
            for key in [k for k in tree if k.startswith(name + "/")]:
                del tree[key]
        tree[name] = (_kind(m), m.mode & 0o7777, m.uid, m.gid, digest)


def read_image(archive: Path) -> tuple[dict[str, Entry], dict[str, Any]]:
    """(path -> entry, the image config document) of the one image in a ``save`` archive."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        tree: dict[str, Entry] = {}
        for layer_name in manifest[0]["Layers"]:
            blob = outer.extractfile(layer_name)
            assert blob is not None
            with tarfile.open(fileobj=blob, mode="r:*") as layer:
                _apply(tree, layer)
    return tree, config


CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
               "Healthcheck", "StopSignal", "Shell", "OnBuild")  # fmt: skip


def config_view(doc: dict[str, Any]) -> dict[str, Any]:
    cfg = doc.get("config") or {}
    return {k: cfg.get(k) or None for k in CONFIG_KEYS} | {"author": doc.get("author")}


def history_view(doc: dict[str, Any], *, mask_hashes: bool = False) -> list[tuple[str, bool]]:
    """``created_by`` lines (COPY's content hashes included unless masked) and empty-layer flags."""
    out = []
    for h in doc.get("history") or []:
        line = h.get("created_by", "")
        if mask_hashes:
            line = re.sub(r"(file|dir|multi):[0-9a-f]{64}", r"\1:<hash>", line)
        out.append((line, bool(h.get("empty_layer"))))
    return out
