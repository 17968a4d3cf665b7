"""``rmi``: Docker's rules for untagging and deleting images, as daemon/images/image_delete.go applies them.

- A reference (name) given: untag it; delete the image only when no reference is left, refusing when the
  last reference is removed from an image a container uses (unless forced).
- An ID given: remove its references when they all belong to one repository, then delete the image;
  several repositories → "image is referenced in multiple repositories" (must be forced);
  child images → "image has dependent child images" (cannot be forced);
  a running container → cannot be forced; a stopped container → must be forced.
- Deleting prints ``Deleted:`` for the image ID and for every layer chain ID no image uses any more,
  then prunes untagged parents no longer needed (unless ``--no-prune``), quietly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field  # this module is loaded only when something is deleted

from strata.digest import Digest
from strata.errors import Conflict, ImageNotFound
from strata.reference import Reference, parse_normalized_named
from strata.store.images import Metadata, chain_ids

__all__ = ["ContainerUse", "DeleteResult", "delete_image"]

# image ID -> [(container full id, running)], oldest first
ContainerUse = Callable[[], dict[Digest, list[tuple[str, bool]]]]


@dataclass
class DeleteResult:
    untagged: list[str] = field(default_factory=list)
    deleted: list[Digest] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)  # ("Untagged"|"Deleted", text) in order

    def untag(self, ref: Reference) -> None:
        self.lines.append(("Untagged", ref.familiar_string()))

    def delete(self, d: Digest) -> None:
        self.lines.append(("Deleted", str(d)))


class _DeleteConflict(Conflict):
    def __init__(self, image_id: Digest, message: str, *, hard: bool, used: bool = False) -> None:
        force = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {image_id.short} ({force}) - {message}")
        self.hard = hard
        self.used = used


def _single_reference(refs: list[Reference]) -> bool:
    if len(refs) <= 1:
        return len(refs) == 1
    single: Reference | None = None
    canonical: set[str] = set()
    for r in refs:
        if r.digest is not None:
            canonical.add(r.repository)
        elif single is None:
            single = r
        else:
            return False
    if single is None:
        single = refs[0]
    return len(canonical) == 1 and single.repository in canonical


class _Deleter:
    def __init__(self, meta: Metadata, use: ContainerUse, force: bool, prune: bool) -> None:
        self.meta = meta
        self.use = use()
        self.force = force
        self.prune = prune
        self.result = DeleteResult()

    def conflict(self, image_id: Digest, hard_only: bool, soft_refs: bool = True) -> _DeleteConflict | None:
        if self.meta.children(image_id):
            return _DeleteConflict(image_id, "image has dependent child images", hard=True)
        users = self.use.get(image_id, [])
        running = [c for c, r in users if r]
        if running:
            return _DeleteConflict(
                image_id, f"image is being used by running container {running[0][:12]}", hard=True, used=True
            )
        if hard_only:
            return None
        if soft_refs and self.meta.refs(image_id):
            return _DeleteConflict(image_id, "image is referenced in multiple repositories", hard=False)
        if users:
            return _DeleteConflict(
                image_id, f"image is being used by stopped container {users[0][0][:12]}", hard=False, used=True
            )
        return None

    def run(self, name: str, image_id: Digest, by_id: bool) -> DeleteResult:
        refs = self.meta.refs(image_id)
        removed_ref = False
        if not by_id:
            users = self.use.get(image_id, [])
            if not self.force and _single_reference(refs) and users:
                raise Conflict(
                    f'conflict: unable to remove repository reference "{name}" (must force) - container '
                    f"{users[0][0][:12]} is using its referenced image {image_id.short}"
                )
            ref = parse_normalized_named(name)
            if ref.digest is None:
                ref = ref.tag_name_only()
            self.meta.remove_ref(ref)
            self.result.untag(ref)
            refs = self.meta.refs(image_id)
            if ref.digest is None and not any(r.digest is None and r.repository == ref.repository for r in refs):
                remaining = []
                for r in refs:
                    if r.digest is not None and r.repository == ref.repository:
                        self.meta.remove_ref(r)
                        self.result.untag(r)
                    else:
                        remaining.append(r)
                refs = remaining
            if refs:
                return self.result
            removed_ref = True
        elif _single_reference(refs):
            c = self.conflict(image_id, hard_only=self.force, soft_refs=False)
            if c is not None:
                raise c
            for r in refs:
                self.meta.remove_ref(r)
                self.result.untag(r)
        self.helper(image_id, self.force, self.prune, quiet=removed_ref)
        return self.result

    def helper(self, image_id: Digest, force: bool, prune: bool, quiet: bool) -> None:
        c = self.conflict(image_id, hard_only=force)
        if c is not None:
            dangling = not self.meta.refs(image_id) and not self.meta.children(image_id)
            if quiet and (not dangling or c.used):
                return
            raise c
        rec = self.meta.get(image_id)
        parent = rec.parent if rec else None
        for r in self.meta.refs(image_id):
            self.meta.remove_ref(r)
            self.result.untag(r)
        diff_ids = [d for d, _ in self.meta.image_layers(image_id)]
        self.meta.delete_image(image_id)
        self.result.delete(image_id)
        self.result.deleted.append(image_id)
        chains = chain_ids(diff_ids)
        held = bool(self.use.get(image_id))  # a (stopped, forced) container still stacks every layer
        for n in range(0 if held else len(diff_ids), 0, -1):
            if self.meta.chain_in_use(diff_ids[:n]):
                break
            self.result.delete(chains[n - 1])
        if prune and parent is not None and self.meta.get(parent) is not None:
            self.helper(parent, force=False, prune=True, quiet=True)


def delete_image(
    meta: Metadata, name: str, image_id: Digest | None, by_id: bool, *, force: bool, prune: bool, use: ContainerUse
) -> DeleteResult:
    """Apply Docker's rmi rules to one argument, inside the caller's transaction."""
    if image_id is None:
        raise ImageNotFound(name)
    return _Deleter(meta, use, force, prune).run(name, image_id, by_id)
