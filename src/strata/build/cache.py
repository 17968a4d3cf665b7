"""The build cache: a step is reused when its parent image and its container config (the command
with the ``#(nop)`` comment, COPY's content hash, the build args of a RUN) are the same, as
Docker's classic builder decides it. Entries are small files under ``<root>/buildcache/``, written
without fsync: an entry a crash loses or leaves empty is a cache miss (a step built again), never a
wrong hit (an entry names an image, looked up in the store before it is used)."""

from __future__ import annotations

import os

from strata import jsonfast  # json's values, without importing json (a cached build's start-up)
from strata.atomicfile import not_durable, write_bytes_atomic
from strata.build.keyhash import sha256_hex
from strata.digest import Digest
from strata.errors import StrataError

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

    from strata.engine import Engine

__all__ = ["BuildCache"]


class BuildCache:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dir = os.path.join(engine.root_dir, "buildcache")  # str paths: a cached step loads no pathlib

    @staticmethod
    def key(parent: Digest | None, container_config: dict[str, Any]) -> str:
        doc = jsonfast.dumps([str(parent or ""), container_config], sort_keys=True, separators=(",", ":"))
        return sha256_hex(doc.encode())

    def get(self, key: str) -> Digest | None:
        try:
            with open(os.path.join(self.dir, key), "rb") as f:
                image_id = Digest.parse(f.read().decode(errors="replace").strip())
        except (OSError, StrataError):
            return None
        return image_id if self.engine.meta.get(image_id) is not None else None

    def _memo_path(self, image_id: Digest | None, srcs: list[str]) -> str:
        doc = jsonfast.dumps(["sources", str(image_id or "scratch"), srcs])
        return os.path.join(self.dir, "sources-" + sha256_hex(doc.encode()))

    def sources_memo(self, image_id: Digest | None, srcs: list[str]) -> tuple[list[str], str] | None:
        """What ``COPY --from`` sources of an image resolved to and their hash, if computed before."""
        try:
            with open(self._memo_path(image_id, srcs), "rb") as f:
                rels, digest = jsonfast.loads(f.read())
        except (OSError, ValueError):
            return None
        return [str(r) for r in rels], str(digest)

    def remember_sources(self, image_id: Digest | None, srcs: list[str], rels: list[str], digest: str) -> None:
        _mkdir(self.dir)
        with not_durable():
            write_bytes_atomic(self._memo_path(image_id, srcs), jsonfast.dumps([rels, digest]).encode())

    def put(self, key: str, image_id: Digest) -> None:
        _mkdir(self.dir)
        with not_durable():
            write_bytes_atomic(os.path.join(self.dir, key), str(image_id).encode())


def _mkdir(path: str) -> None:
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
