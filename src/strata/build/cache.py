"""The build cache: a step is reused when its parent image and its container config (the command
with the ``#(nop)`` comment, COPY's content hash, the build args of a RUN) are the same, as
Docker's classic builder decides it. Entries are small files under ``<root>/buildcache/``, written
without fsync: an entry a crash loses or leaves empty is a cache miss (a step built again), never a
wrong hit (an entry names an image, looked up in the store before it is used)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strata.atomicfile import not_durable, write_bytes_atomic
from strata.digest import Digest
from strata.errors import StrataError

if TYPE_CHECKING:
    from strata.engine import Engine

__all__ = ["BuildCache"]


class BuildCache:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dir = Path(engine.root) / "buildcache"

    @staticmethod
    def key(parent: Digest | None, container_config: dict[str, Any]) -> str:
        doc = json.dumps([str(parent or ""), container_config], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(doc.encode()).hexdigest()

    def get(self, key: str) -> Digest | None:
        try:
            image_id = Digest.parse((self.dir / key).read_text().strip())
        except (OSError, StrataError):
            return None
        return image_id if self.engine.meta.get(image_id) is not None else None

    def _memo_path(self, image_id: Digest | None, srcs: list[str]) -> Path:
        doc = json.dumps(["sources", str(image_id or "scratch"), srcs])
        return self.dir / ("sources-" + hashlib.sha256(doc.encode()).hexdigest())

    def sources_memo(self, image_id: Digest | None, srcs: list[str]) -> tuple[list[str], str] | None:
        """What ``COPY --from`` sources of an image resolved to and their hash, if computed before."""
        try:
            rels, digest = json.loads(self._memo_path(image_id, srcs).read_text())
        except (OSError, ValueError):
            return None
        return [str(r) for r in rels], str(digest)

    def remember_sources(self, image_id: Digest | None, srcs: list[str], rels: list[str], digest: str) -> None:
        self.dir.mkdir(exist_ok=True)
        with not_durable():
            write_bytes_atomic(self._memo_path(image_id, srcs), json.dumps([rels, digest]).encode())

    def put(self, key: str, image_id: Digest) -> None:
        self.dir.mkdir(exist_ok=True)
        with not_durable():
            write_bytes_atomic(self.dir / key, str(image_id).encode())
