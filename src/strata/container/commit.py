"""``commit``: a new image = the container's image + one layer holding exactly the container's changes.

A running container is frozen (``runtime pause``) while its upper dir is read, unless ``pause`` is
False. The layer tar is staged in the store's tmp/ under the store's writer lock and only becomes
visible through ``engine.add_image`` (one transaction): a commit killed at any point leaves the
store's images and the container as they were (the staging file is garbage for the next GC).
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strata import __version__
from strata.container.changes import staged_upper, write_layer_tar
from strata.container.lifecycle import FREEZE_MARKER, container_lock, reconcile, runtime_for
from strata.container.records import Container, ContainerStore, container_dir
from strata.digest import Digest
from strata.errors import ContainerNotFound, ImageNotFound, InvalidReference, StrataError, os_error_text
from strata.image.config import apply_changes, new_image_config
from strata.reference import Reference, parse_normalized_named

if TYPE_CHECKING:
    from strata.engine import Engine

__all__ = ["commit", "created_by"]


def created_by(c: Container) -> str:
    """What Docker records as the new history entry's ``created_by``: path and args joined by spaces."""
    return " ".join([c.path, *c.args])


def _tag(repo_tag: str | None) -> Reference | None:
    """The client library's ContainerCommit: ParseNormalizedNamed's own error (not ``tag``'s wrapping)."""
    if not repo_tag:
        return None
    ref = parse_normalized_named(repo_tag)
    if ref.digest is not None:
        raise InvalidReference("refusing to create a tag with a digest reference")
    return ref.tag_name_only()


def commit(
    engine: Engine,
    store: ContainerStore,
    c: Container,
    *,
    repo_tag: str | None = None,
    author: str = "",
    message: str = "",
    changes: list[str] | None = None,
    pause: bool = True,
) -> Digest:
    """Commit ``c``; returns the new image ID."""
    tag = _tag(repo_tag)
    with container_lock(store.root, c.id):
        current = store.by_id(c.id)
        if current is None:
            raise ContainerNotFound(c.name)
        c = reconcile(store, current)
        runtime = runtime_for(store.root, c)
        marker = container_dir(store.root, c.id) / FREEZE_MARKER
        paused_here = False
        if pause and c.state == "running":
            marker.write_text(str(os.getpid()))  # lets a later command thaw it if we die frozen
            runtime.pause(c.id)
            paused_here = True
        try:
            return _commit_locked(engine, c, tag, author, message, changes or [])
        finally:
            if paused_here:
                try:
                    runtime.resume(c.id)
                except StrataError:
                    pass
                marker.unlink(missing_ok=True)


def _commit_locked(
    engine: Engine, c: Container, tag: Reference | None, author: str, message: str, changes: list[str]
) -> Digest:
    parent = Digest.parse(c.image_id)
    try:
        base: dict[str, Any] = dict(engine.image_config(parent).data)
    except (OSError, StrataError):  # the image was force-removed after the container was created
        raise ImageNotFound(str(parent)) from None
    config = apply_changes(copy.deepcopy(c.config), changes)
    cfg = new_image_config(
        config=config, comment=message, author=author, created_by=created_by(c), base=base,
        container=c.id, container_config=copy.deepcopy(c.config), docker_version=__version__,
    )
    with engine.writing():
        tmp_root = engine.store.tmp
        scratch = Path(tempfile.mkdtemp(dir=tmp_root, prefix="commit-"))
        try:
            layer = scratch / "layer.tar"
            cdir = container_dir(Path(engine.root), c.id)
            members: list[str] = []
            with staged_upper(cdir, c.driver, scratch) as upper, open(layer, "wb") as f:
                write_layer_tar(upper, f, on_member=lambda info: members.append(info.name))
                f.flush()
                os.fsync(f.fileno())
            if not members:  # Docker's NewChildImage: an empty diff adds no layer, its history says so
                cfg["history"][-1]["empty_layer"] = True
                return engine.add_image(cfg, None, parent=parent, tag=tag)
            return engine.add_image(cfg, layer, parent=parent, tag=tag)
        except OSError as e:  # e.g. ENOSPC while staging the layer: nothing became visible
            raise StrataError(f"failed to commit container {c.short_id}: {os_error_text(e)}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

