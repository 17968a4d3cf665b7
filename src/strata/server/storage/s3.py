"""The S3 storage driver (``storage.s3``): distribution's layout in a bucket, through boto3.

A driver path ``/a/b`` is the object ``<rootdirectory>/a/b``; directories are key prefixes (they
exist while something is below them). Writers stream as multipart uploads (:mod:`.s3writer`);
``move`` is a server-side copy then a delete (S3 has no rename; the copy appears whole at its
destination); ``touch`` copies an object onto itself with a new ``mtime``; ``redirect_url``
presigns a GET for 20 minutes unless ``storage.redirect.disable`` is set. Every call blocks on
the network: callers in an event loop run them in a thread.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from strata.digest import CHUNK
from strata.server.storage.driver import (
    FileInfo,
    FileWriter,
    InvalidOffset,
    PathNotFound,
    StorageDriver,
    StorageError,
    check_path,
)
from strata.server.storage.s3objects import Bucket, is_not_found, s3_errors
from strata.server.storage.s3options import S3Options, parse_options
from strata.server.storage.s3writer import S3Writer

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

__all__ = ["REDIRECT_EXPIRY", "REDIRECT_REUSE", "S3Driver"]

REDIRECT_EXPIRY = 20 * 60  # seconds a presigned blob URL stays valid (distribution's)
REDIRECT_REUSE = 5 * 60  # seconds one presigned URL is handed out again
_PRESIGNED_MAX = 10_000
_RETRIES = 3


class _Reader(io.RawIOBase):
    """An object's bytes from an offset; a connection that breaks mid-way is resumed where it broke."""

    def __init__(self, driver: S3Driver, key: str, path: str, pos: int, resp: GetObjectOutputTypeDef) -> None:
        self._d, self._key, self._path, self._pos = driver, key, path, pos
        self._body = resp["Body"]
        self._etag = resp.get("ETag")

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        for attempt in range(_RETRIES + 1):
            try:
                data = self._body.read(len(buf))
                break
            except BotoCoreError as e:
                self._body.close()
                if attempt == _RETRIES:
                    raise StorageError(f"s3aws: reading {self._path}: {e}") from e
                resp = self._d.get_object(self._key, self._path, self._pos, self._etag)
                if resp is None:
                    raise StorageError(f"s3aws: {self._path} changed while being read")
                self._body = resp["Body"]
        n = len(data)
        buf[:n] = data
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Driver(StorageDriver):
    name = "s3aws"

    def __init__(self, options: S3Options, bucket: Bucket | None = None) -> None:
        self.options = options
        self.bucket = bucket or Bucket(options)
        self._root = options.rootdirectory.strip("/")
        self._presigned: dict[str, tuple[float, str]] = {}  # key -> (signed at, monotonic; url)

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any] | None, redirect: Mapping[str, Any] | None = None) -> S3Driver:
        """The driver for a ``storage.s3`` mapping (and ``storage.redirect``), as distribution reads them."""
        return cls(parse_options(params, redirect))

    # keys

    def _key(self, path: str) -> str:
        check_path(path)
        if path == "/":
            return self._root
        return f"{self._root}{path}" if self._root else path[1:]

    def _dir_prefix(self, path: str) -> str:
        key = self._key(path)
        return key + "/" if key else ""

    # reading

    def get_object(self, key: str, path: str, offset: int, etag: str | None = None) -> GetObjectOutputTypeDef | None:
        """The object from ``offset`` on (None when missing, or changed from ``etag``)."""
        extra: dict[str, Any] = {"IfMatch": etag} if etag else {}
        if offset:
            extra["Range"] = f"bytes={offset}-"
        with s3_errors():
            try:
                return self.bucket.client.get_object(Bucket=self.bucket.name, Key=key, **extra)
            except ClientError as e:
                code = str(e.response.get("Error", {}).get("Code", ""))
                if is_not_found(e) or code in ("PreconditionFailed", "412"):
                    return None
                if code not in ("InvalidRange", "416"):
                    raise
        info = self.stat(path)
        if info.is_dir or offset != info.size:
            raise InvalidOffset(path, offset)
        return None

    def get_content(self, path: str) -> bytes:
        data = self.bucket.get(self._key(path)) if path != "/" else None
        if data is None:
            raise PathNotFound(path)
        return data

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        key = self._key(path)
        if path == "/":
            raise PathNotFound(path)
        if offset < 0:
            raise InvalidOffset(path, offset)
        resp = self.get_object(key, path, offset)
        if resp is None:
            if self.bucket.head(key) is None:
                raise PathNotFound(path)
            return io.BytesIO(b"")  # offset is exactly the end
        return io.BufferedReader(_Reader(self, key, path, offset, resp), CHUNK)

    def stat(self, path: str) -> FileInfo:
        key = self._key(path)
        if path != "/":
            info = self.bucket.head(key)
            if info is not None:
                return FileInfo(path, info.size, info.mtime, False)
        first = self.bucket.first(self._dir_prefix(path))
        if first is None and path != "/":
            raise PathNotFound(path)
        return FileInfo(path, 0, first["LastModified"].timestamp() if first else 0.0, True)

    def list(self, path: str) -> list[str]:
        prefix = self._dir_prefix(path)
        children: set[str] = set()
        for objects, prefixes in self.bucket.objects(prefix, "/"):
            children.update(o["Key"] for o in objects)
            children.update(p.rstrip("/") for p in prefixes)
        if not children and path != "/":
            raise PathNotFound(path)
        base = "" if path == "/" else path
        return sorted(f"{base}/{k[len(prefix):]}" for k in children if k[len(prefix) :])

    # writing

    def put_content(self, path: str, data: bytes) -> None:
        if path == "/":
            raise PathNotFound(path)
        self.bucket.put(self._key(path), data)

    def writer(self, path: str, append: bool = False) -> FileWriter:
        key = self._key(path)
        stored = self.bucket.head(key) if append else None
        if append and stored is None:
            raise PathNotFound(path)
        return S3Writer(self.bucket, key, path, stored, append)

    def move(self, src: str, dst: str) -> None:
        self._move(src, dst, touch=False)

    def move_and_touch(self, src: str, dst: str) -> None:
        """One server-side copy that also sets the time (``move`` then ``touch`` would copy twice)."""
        self._move(src, dst, touch=True)

    def _move(self, src: str, dst: str, touch: bool) -> None:
        skey, dkey = self._key(src), self._key(dst)
        info = self.bucket.head(skey) if src != "/" else None
        if info is None:
            raise PathNotFound(src)
        if skey == dkey:
            if touch:
                self.bucket.copy(skey, dkey, info.size, time.time())
            return
        self.bucket.copy(skey, dkey, info.size, time.time() if touch else info.mtime)
        self.bucket.delete_keys([skey])

    def delete(self, path: str) -> None:
        key = self._key(path)
        prefix = self._dir_prefix(path)
        keys = [
            o["Key"]
            for objects, _ in self.bucket.objects(key if path != "/" else prefix)
            for o in objects
            if o["Key"] == key or o["Key"].startswith(prefix)
        ]
        aborted = self.bucket.abort_uploads(key) if path != "/" else 0
        if not keys and not aborted:
            raise PathNotFound(path)
        self.bucket.delete_keys(keys)

    def touch(self, path: str) -> None:
        key = self._key(path)
        info = self.bucket.head(key) if path != "/" else None
        if info is None:
            raise PathNotFound(path)
        self.bucket.copy(key, key, info.size, time.time())

    def redirect_url(self, path: str) -> str | None:
        """A presigned GET for ``path``; signing costs more than a millisecond of CPU, so one URL is
        handed out again for ``REDIRECT_REUSE`` seconds (every client still gets 15 minutes of it)."""
        if not self.options.redirect:
            return None
        key = self._key(path)
        now = time.monotonic()
        hit = self._presigned.get(key)
        if hit is not None and now - hit[0] < REDIRECT_REUSE:
            return hit[1]
        url = self.bucket.presign_get(key, REDIRECT_EXPIRY)
        if len(self._presigned) >= _PRESIGNED_MAX:
            self._presigned.clear()  # bounded; the next requests sign again
        self._presigned[key] = (now, url)
        return url
