"""A step's layer straight into the store: its tar written once into the store's tmp/ (hashed while
written: uncompressed, its diff ID is its blob digest), its members checked and its content size
counted as they are written (never read back), then renamed into blobs/. ``engine.add_image`` would
read, hash twice and copy the tar again."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from strata.digest import Digest, digest_bytes
from strata.image.spec import ImageConfig
from strata.store.blobs import LayerBlob

TYPE_CHECKING = False  # not typing's: importing typing costs a cold build's start-up
if TYPE_CHECKING:
    import tarfile
    from typing import Any

    from strata.engine import Engine

__all__ = ["commit_layer", "config_blob", "store_layer"]

class _Members:
    """Each member of the layer tar being written, checked as a stored layer's are (``ingest``'s
    check), and Docker's layer size counted: regular files' bytes, symlinks' target lengths."""

    def __init__(self) -> None:
        from strata.store.blobs import _verify_member

        self.verify = _verify_member
        self.size = 0

    def __call__(self, member: tarfile.TarInfo) -> None:
        self.verify(member)
        if member.isreg():
            self.size += member.size
        elif member.issym():
            self.size += len(member.linkname.encode())


Adopt = Callable[[Digest], "Path | None"]


def _store_layer(
    engine: Engine, upper: Path, adopt: Adopt | None = None, config: Callable[[Digest], bytes] | None = None
) -> LayerBlob:
    from strata.atomicfile import dir_fsyncs_at_end
    from strata.container.changes import write_layer_tar

    members = _Members()  # counted while written: the tar is never read back
    with engine.store.temp_file() as (f, tmp), engine.store.temp_file() as (cf, ctmp):
        info = write_layer_tar(upper, f, members, writeback=adopt is not None)  # type: ignore[arg-type]
        f.flush()
        raw = config(info.diff_id) if config is not None else None
        if raw is not None:  # the image's config, written now: the adoption's sync covers it too
            cf.write(raw)
            cf.flush()
        with dir_fsyncs_at_end():  # the layer dir's and blobs' renames made durable by one journal commit
            adopted = adopt(info.diff_id) if adopt is not None else None
            synced = adopted is not None and os.stat(adopted).st_dev == os.fstat(f.fileno()).st_dev
            known = engine.known_layer(info.diff_id)
            if synced:  # renamed into place, the renames made durable before anything is recorded
                staged = [(ctmp, digest_bytes(raw))] if raw is not None else []  # commit_image finds it there
                _publish_synced(engine, [*staged, *([(tmp, info.diff_id)] if known is None else [])])
        if known is None:
            lay = LayerBlob(info.diff_id, info.size, info.diff_id, members.size, "none", info.size)
            if not synced:
                engine.store.publish_file(tmp, engine.store.blob_path(info.diff_id))
            engine.record_layer_blob(lay)
            return lay
    return known


def _publish_synced(engine: Engine, files: list[tuple[Path, Digest]]) -> None:
    """``publish_file`` of files whose content is durable already (a syncfs since they were written):
    each renamed into place (unless it is there: content-addressed), then one fsync of blobs/."""
    from strata.atomicfile import fsync_dir

    moved = None
    for tmp, digest in files:
        final = engine.store.blob_path(digest)
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
            moved = final.parent
    if moved is not None:
        fsync_dir(moved)


def store_layer(
    engine: Engine, upper: Path, adopt: Adopt | None = None, config: Callable[[Digest], bytes] | None = None
) -> LayerBlob:
    """The layer of an overlay upper directory, stored (or the stored one with its digest).
    ``adopt(diff_id)``, once the tar is written and before it is stored, may make the upper dir the
    layer's unpacked directory (returned, else None), syncing the filesystem before it becomes visible:
    the tar (and ``config(diff_id)``, the image config blob, written before it) then needs no fsync of
    its own; the config blob is then in place for ``commit_layer``."""
    return _store_layer(engine, upper, adopt, config)


def config_blob(cfg: dict[str, Any], layers: list[Digest]) -> bytes:
    """The config document of an image of ``cfg`` with these layers (diff IDs, lowest first)."""
    data = dict(cfg)
    data["rootfs"] = {"type": "layers", "diff_ids": [str(d) for d in layers]}
    return ImageConfig.from_dict(data).raw


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
    return engine.commit_image(config_blob(cfg, [lay.diff_id for lay in layers]), layers, parent=parent)

