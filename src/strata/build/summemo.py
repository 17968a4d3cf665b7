"""Content sums of a context directory's files remembered between builds (as BuildKit keeps its
content cache): a file whose path, inode, size, mode, owner, mtime and ctime are unchanged has the
sum it had, so a rebuild does not read its context again. Any change to a file's content or
metadata moves its ctime, which only the kernel sets. Kept in ``<root>/buildcache/sums/``, one JSON
file per context directory, written atomically when something new was hashed."""

from __future__ import annotations

import os
import threading

from strata import jsonfast
from strata.atomicfile import not_durable, write_bytes_atomic
from strata.build.keyhash import sha256_hex

__all__ = ["SumMemo"]

_MAX_ENTRIES = 200_000


class SumMemo:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.dirty = False
        try:
            with open(path, "rb") as f:
                loaded = jsonfast.loads(f.read())
            self.sums: dict[str, str] = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            self.sums = {}
        self.used: dict[str, str] = {}

    @classmethod
    def for_context(cls, store_root: str, context: str) -> SumMemo:
        """The sums of the context directory ``context`` (named by its real path: pathlib's ``resolve()``)."""
        name = sha256_hex(os.path.realpath(context).encode())
        return cls(os.path.join(store_root, "buildcache", "sums", f"{name}.json"))

    @staticmethod
    def key(rel: str, st: os.stat_result) -> str:
        return "\0".join(str(v) for v in (rel, st.st_dev, st.st_ino, st.st_size, st.st_mode, st.st_uid, st.st_gid,
                                          st.st_mtime_ns, st.st_ctime_ns))  # fmt: skip

    def has(self, key: str) -> bool:
        with self.lock:
            return key in self.sums

    def get(self, key: str) -> str | None:
        with self.lock:
            found = self.sums.get(key)
            if found is not None:
                self.used[key] = found
            return found

    def put(self, key: str, value: str) -> None:
        with self.lock:
            self.sums[key] = self.used[key] = value
            self.dirty = True

    def save(self) -> None:
        """Written when something was hashed; only the sums this build used are kept (a file that
        changed leaves no stale entry behind), unless they are too many to keep."""
        with self.lock:
            if not self.dirty or len(self.used) > _MAX_ENTRIES:
                return
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                with not_durable():  # a crash leaves the previous sums or none: a rehash, never a wrong sum
                    write_bytes_atomic(self.path, jsonfast.dumps(self.used, separators=(",", ":")).encode())
            except OSError:
                pass  # a cache: a build never fails for it
            self.dirty = False
