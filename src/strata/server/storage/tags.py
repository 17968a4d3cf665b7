"""Tags of one repository: ``current/link`` plus the index of every digest a tag held."""

from __future__ import annotations

from strata.digest import Digest
from strata.server.storage import paths
from strata.server.storage.blobstore import list_or_empty, read_link, write_link
from strata.server.storage.driver import PathNotFound, StorageDriver

__all__ = ["TagStore"]


class TagStore:
    def __init__(self, driver: StorageDriver, name: str) -> None:
        self.driver = driver
        self.name = name

    def get(self, tag: str) -> Digest | None:
        return read_link(self.driver, paths.tag_current_link(self.name, tag))

    def tag(self, tag: str, d: Digest) -> None:
        write_link(self.driver, paths.tag_index_link(self.name, tag, d), d)
        write_link(self.driver, paths.tag_current_link(self.name, tag), d)

    def untag(self, tag: str) -> bool:
        try:
            self.driver.delete(paths.tag_dir(self.name, tag))
        except PathNotFound:
            return False
        return True

    def all(self) -> list[str]:
        """Tags that currently point somewhere, sorted."""
        out = []
        for tag_dir in list_or_empty(self.driver, paths.tags_dir(self.name)):
            tag = tag_dir.rsplit("/", 1)[1]
            if self.get(tag) is not None:
                out.append(tag)
        return sorted(out)

    def lookup(self, d: Digest) -> list[str]:
        """Tags whose current digest is ``d``."""
        return [t for t in self.all() if self.get(t) == d]

    def mapping(self) -> dict[str, Digest]:
        out: dict[str, Digest] = {}
        for tag in self.all():
            d = self.get(tag)
            if d is not None:
                out[tag] = d
        return out
