"""A step's layer straight into the store: its tar written once into the store's tmp/ (hashed while
written: uncompressed, its diff ID is its blob digest), its members checked and its content size
counted from the headers alone (the file is seekable: contents are skipped, not read), then renamed
into blobs/. ``engine.add_image`` would read, hash twice and copy the tar again."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from strata.digest import Digest
from strata.errors import InvalidArchive
from strata.image.spec import ImageConfig
from strata.store.blobs import LayerBlob

if TYPE_CHECKING:
    from strata.engine import Engine

__all__ = ["commit_layer", "store_layer"]

def _content_size(path: Path) -> int:
    """Docker's layer size (regular files' bytes, symlinks' target lengths), every member checked."""
    import tarfile

    from strata.store.blobs import _verify_member

    size = 0
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                _verify_member(member)
                if member.isreg():
                    size += member.size
                elif member.issym():
                    size += len(member.linkname.encode())
    except (tarfile.TarError, EOFError) as e:
        raise InvalidArchive(f"invalid tar: {e}") from None
    return size

def _store_layer(engine: Engine, upper: Path) -> LayerBlob:
    from strata.container.changes import write_layer_tar

    with engine.store.temp_file() as (f, tmp):
        info = write_layer_tar(upper, f)  # type: ignore[arg-type]
        f.flush()
        known = engine.known_layer(info.diff_id)
        if known is None:
            lay = LayerBlob(info.diff_id, info.size, info.diff_id, _content_size(tmp), "none", info.size)
            engine.store.publish_file(tmp, engine.store.blob_path(info.diff_id))
            engine.record_layer_blob(lay)
            return lay
    return known


def store_layer(engine: Engine, upper: Path) -> LayerBlob:
    """The layer of an overlay upper directory, stored (or the stored one with its digest)."""
    return _store_layer(engine, upper)


def commit_layer(
    engine: Engine, cfg: dict[str, Any], upper: Path | None, parent: Digest | None, layer: LayerBlob | None = None
) -> Digest:
    """The image of ``cfg``: ``parent``'s layers and, unless ``upper`` is None, the layer of that
    overlay upper directory (or ``layer``, a stored one). Called with the store's writing lock held."""
    layers = engine.parent_layers(parent)
    if upper is not None:
        layers.append(_store_layer(engine, upper))
    if layer is not None:
        layers.append(layer)
    data = dict(cfg)
    data["rootfs"] = {"type": "layers", "diff_ids": [str(lay.diff_id) for lay in layers]}
    return engine.commit_image(ImageConfig.from_dict(data).raw, layers, parent=parent)

