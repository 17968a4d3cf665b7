"""``COPY --link`` / ``ADD --link`` (BuildKit's): the sources are copied into an empty tree, never
reading the stage's files (the destination's parents are made 0755, owned as the copy), and that tree is
the step's layer, put on top of the stage's image. As BuildKit documents it, the layers then stack: the
parents' mode and owner override the base's (``/tmp`` becomes 0755), and ``COPY --link file /dir``
(no trailing slash) makes ``/dir`` that file, hiding the base's directory. The layer is kept by what makes it (the
instruction with its sources' content hash, destination, owner and mode), not by the base: the same
step over another base reuses it, so its digest is the same."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strata.build.copy import CopyPlan, Source, copy_sources
from strata.digest import Digest
from strata.errors import StrataError

if TYPE_CHECKING:
    from strata.build.builder import Builder
    from strata.build.context import BuildContext
    from strata.build.state import Stage
    from strata.build.steps import StepRoot
    from strata.store.blobs import LayerBlob

__all__ = ["copy_linked"]


def copy_linked(b: Builder, stage: Stage, tree: BuildContext, rels: list[str], plan: CopyPlan,
                cc: dict[str, Any]) -> Digest:  # fmt: skip
    """The step's image: the stage's image and the linked layer (made, or the one kept for it)."""
    from strata.build.layerstore import commit_layer

    key = _key(cc, plan)

    def doc(cid: str) -> dict[str, Any]:
        return b.image_doc(stage, dict(cc), cid, False)

    if not b.opts.no_cache:
        with b.engine.writing():
            layer = _kept(b, key)
            if layer is not None:
                return commit_layer(b.engine, doc(os.urandom(32).hex()), None, stage.image_id, layer=layer)
    with b.runner.step_root(None, {}, ["true"]) as root:
        root_fd = os.open(root.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            copy_sources([Source(tree.fd, rel, tree.rules) for rel in rels], plan, root_fd)
        finally:
            os.close(root_fd)
        with b.engine.writing():
            layer = _stored(b, root)
            image_id = commit_layer(b.engine, doc(root.id), None, stage.image_id, layer=layer)
    _keep(b, key, layer.digest)
    return image_id


def _key(cc: dict[str, Any], plan: CopyPlan) -> str:
    """What decides the layer: the history comment (sources' hash, destination as written), the
    destination, owner, mode and whether archives are unpacked; not the base."""
    doc = ["link", (cc.get("Cmd") or [""])[-1], plan.dest, list(plan.owner), plan.chmod, plan.extract]
    return "link-" + hashlib.sha256(json.dumps(doc).encode()).hexdigest()


def _kept(b: Builder, key: str) -> LayerBlob | None:
    try:
        blob = Digest.parse((Path(b.engine.root) / "buildcache" / key).read_text().strip())
    except (OSError, StrataError):
        return None
    return b.engine.known_layer(blob)


def _keep(b: Builder, key: str, blob: Digest) -> None:
    from strata.atomicfile import write_bytes_atomic

    where = Path(b.engine.root) / "buildcache"
    where.mkdir(exist_ok=True)
    write_bytes_atomic(where / key, str(blob).encode())


def _stored(b: Builder, root: StepRoot) -> LayerBlob:
    """The scratch root's changes (all it holds) as a stored layer."""
    from strata.build.layerstore import store_layer
    from strata.container.changes import staged_upper

    scratch = Path(tempfile.mkdtemp(dir=b.engine.store.tmp, prefix="build-link-"))
    try:
        with staged_upper(root.cdir, root.driver, scratch) as upper:
            return store_layer(b.engine, upper)
    except OSError as e:
        raise StrataError(f"failed to commit build step: {e.strerror}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
