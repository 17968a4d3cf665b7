"""``build --cache-from IMAGE``: images whose history a step may reuse, as Docker's classic builder does
(its ``image/cache.ImageCache``). With any given (found or not), a step's own cache entry counts only
when it is an ancestor of one of them; otherwise a source whose history begins with the step's parent
image (the same history entries and layers) and whose next entry was made by the step's command is the
step's image: the source itself at its last entry, else an image made of the parent and that entry
(with its layer, when it has one), and from then on only that source is followed."""

from __future__ import annotations

from strata.build.layerstore import config_blob
from strata.errors import StrataError

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

    from strata.digest import Digest
    from strata.engine import Engine

__all__ = ["CacheSources"]


def _diff_ids(doc: dict[str, Any] | None) -> list[str]:
    return list(((doc or {}).get("rootfs") or {}).get("diff_ids") or [])


def _history(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The config's history; an entry that is no JSON object (a hostile or broken image) as an empty one."""
    return [h if isinstance(h, dict) else {} for h in (doc or {}).get("history") or []]


def _valid_parent(doc: dict[str, Any], parent: dict[str, Any] | None) -> bool:
    """Docker's ``isValidParent``: the source's history and layers begin with the parent's."""
    history, above = _history(doc), _history(parent)
    if not history:
        return False
    if parent is None or (not above and not _diff_ids(parent)):
        return True
    if len(above) >= len(history) or len(_diff_ids(parent)) > len(_diff_ids(doc)):
        return False
    return history[: len(above)] == above and _diff_ids(doc)[: len(_diff_ids(parent))] == _diff_ids(parent)


def _layer_at(doc: dict[str, Any], index: int) -> str | None:
    """The diff ID of the layer the history entry ``index`` made (None: an empty layer; "" when the image
    has fewer layers than its history says, which matches no step)."""
    history, diff_ids = _history(doc), _diff_ids(doc)
    if index >= len(history):
        return ""
    if history[index].get("empty_layer"):
        return None
    layer = sum(1 for h in history[:index] if not h.get("empty_layer"))
    return diff_ids[layer] if layer < len(diff_ids) else ""


class CacheSources:
    def __init__(self, engine: Engine, names: list[str]) -> None:
        self.engine = engine
        self.sources: list[tuple[Digest, dict[str, Any]]] = []
        for name in names:
            try:
                image_id = engine.resolve_image(name)
            except StrataError:  # the daemon only logs it and goes on without it
                continue
            self.sources.append((image_id, dict(engine.image_config(image_id).data)))

    def _ancestor(self, image_id: Digest, of: Digest) -> bool:
        """Docker's ``isParent``: ``image_id`` is a parent, grandparent … of ``of``."""
        seen: set[Digest] = set()
        rec = self.engine.meta.get(of)
        while rec is not None and rec.parent is not None and rec.parent not in seen:
            if rec.parent == image_id:
                return True
            seen.add(rec.parent)
            rec = self.engine.meta.get(rec.parent)
        return False

    def lookup(self, local: Digest | None, parent: Digest | None, cc: dict[str, Any]) -> Digest | None:
        """The step's image (``local``: the step's own cache entry; ``cc``: its container config), or None."""
        if local is not None and any(self._ancestor(local, source) for source, _ in self.sources):
            return local
        parent_doc = dict(self.engine.image_config(parent).data) if parent is not None else None
        index = len(_history(parent_doc))
        created_by = " ".join(cc.get("Cmd") or [])
        for source, doc in self.sources:
            if not _valid_parent(doc, parent_doc) or _history(doc)[index].get("created_by", "") != created_by:
                continue
            self.sources = [(source, doc)]  # one source followed from here, as Docker's
            if index == len(_history(doc)) - 1:
                if parent is not None:
                    with self.engine.meta.transaction():
                        self.engine.meta.set_parent(source, parent)
                return source
            return self._restore(parent, parent_doc, doc, index, cc)
        return None

    def _restore(self, parent: Digest | None, parent_doc: dict[str, Any] | None, doc: dict[str, Any], index: int,
                 cc: dict[str, Any]) -> Digest:  # fmt: skip
        """Docker's ``restoreCachedImage``: the parent and the source's entry ``index`` (its layer too)."""
        from strata.image.config import empty_container_config, ordered_config

        history = [*_history(parent_doc), _history(doc)[index]]
        layers = self.engine.parent_layers(parent)
        diff_id = _layer_at(doc, index)
        if diff_id is not None:
            layers.append(self._layer(diff_id))
        cfg: dict[str, Any] = {"created": history[-1].get("created"), "docker_version": doc.get("docker_version", ""),
                               "config": ordered_config({**empty_container_config(), **cc, "Image": str(parent or "")}),
                               "container_config": ordered_config(empty_container_config())}
        cfg.update({k: doc[k] for k in ("author", "architecture", "os") if doc.get(k)})
        cfg["history"] = history
        with self.engine.writing():
            return self.engine.commit_image(config_blob(cfg, [lay.diff_id for lay in layers]), layers, parent=parent)

    def _layer(self, diff_id: str) -> Any:
        for blob, _, _ in self.engine.blob_layers(self._digest(diff_id)):
            known = self.engine.known_layer(blob)
            if known is not None:
                return known
        raise StrataError(f"layer {diff_id} is missing from the store")

    @staticmethod
    def _digest(text: str) -> Digest:
        from strata.digest import Digest

        return Digest.parse(text)
