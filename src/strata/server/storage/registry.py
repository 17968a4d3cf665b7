"""The registry namespace: repositories by name over one driver and one blob store."""

from __future__ import annotations

from dataclasses import dataclass

from strata.server.storage import paths
from strata.server.storage.blobstore import BlobStore, DescriptorCache, LinkedBlobs, list_or_empty
from strata.server.storage.driver import StorageDriver
from strata.server.storage.manifests import ManifestStore, RecentRevisions
from strata.server.storage.tags import TagStore
from strata.server.storage.uploads import HashState, UploadLock, UploadStore

__all__ = ["Registry", "Repository"]


@dataclass
class Repository:
    name: str
    blobs: LinkedBlobs
    manifests: ManifestStore
    tags: TagStore
    uploads: UploadStore


class Registry:
    def __init__(
        self, driver: StorageDriver, touch_after: float = 600.0, cache: DescriptorCache | None = None,
        upload_lock: UploadLock | None = None,
    ) -> None:
        self.driver = driver
        self.upload_lock = upload_lock
        self.blobs = BlobStore(driver, touch_after, cache)
        # remote storage: a manifest reached by tag skips its revision link's round trip for a second
        self.recent = RecentRevisions() if driver.name not in ("filesystem", "inmemory") else None
        self.hashes: dict[str, HashState] = {}

    def repository(self, name: str) -> Repository:
        return Repository(
            name,
            LinkedBlobs(self.blobs, name),
            ManifestStore(self.blobs, name, self.recent),
            TagStore(self.driver, name),
            UploadStore(self.driver, name, self.hashes, self.upload_lock),
        )

    def exists(self, name: str) -> bool:
        children = list_or_empty(self.driver, paths.repo_root(name))
        return any(c.rsplit("/", 1)[1] in ("_manifests", "_layers") for c in children)

    def repositories(self) -> list[str]:
        """Every repository name, sorted (the catalog)."""
        out: list[str] = []
        self._collect(paths.repos_root(), "", out)
        return sorted(out)

    def repositories_with_uploads(self) -> list[str]:
        out: list[str] = []
        self._collect(paths.repos_root(), "", out, ("_uploads",))
        return sorted(out)

    def _collect(
        self, path: str, prefix: str, out: list[str], markers: tuple[str, ...] = ("_manifests", "_layers")
    ) -> None:
        children = list_or_empty(self.driver, path)
        names = [c.rsplit("/", 1)[1] for c in children]
        if prefix and any(n in markers for n in names):
            out.append(prefix)
        for child, n in zip(children, names, strict=True):
            if not n.startswith("_"):
                self._collect(child, f"{prefix}/{n}" if prefix else n, out, markers)
