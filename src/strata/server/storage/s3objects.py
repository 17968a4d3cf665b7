"""One S3 bucket through boto3: the object calls the S3 driver and its writer make, with errors
turned into :class:`~strata.server.storage.driver.StorageError` (``s3aws: …`` as distribution words them).

Every object strata writes carries its write time as ``x-amz-meta-mtime`` (S3's ``Last-Modified`` has
one-second resolution and cannot be changed in place); objects written by others fall back to it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
import botocore.utils
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from strata.server.storage.driver import StorageError
from strata.server.storage.s3fastpath import FastReads, Unanswered
from strata.server.storage.s3options import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, S3Options

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        CopySourceTypeDef,
        HeadObjectOutputTypeDef,
        ObjectIdentifierTypeDef,
        ObjectTypeDef,
    )

__all__ = ["Bucket", "ObjectInfo", "is_not_found", "s3_errors"]

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
_OCTET = "application/octet-stream"


def is_not_found(e: ClientError) -> bool:
    return str(e.response.get("Error", {}).get("Code", "")) in _NOT_FOUND


@contextlib.contextmanager
def s3_errors() -> Iterator[None]:
    """Turn boto3's failures into ``StorageError`` (``PathNotFound`` is raised by callers)."""
    try:
        yield
    except ClientError as e:
        raise StorageError(f"s3aws: {e}") from e
    except BotoCoreError as e:
        raise StorageError(f"s3aws: {e}") from e


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    mtime: float
    etag: str


def _mtime(meta: dict[str, str], last_modified: Any) -> float:
    try:
        return float(meta["mtime"])
    except (KeyError, ValueError):
        return float(last_modified.timestamp())


def _fast_info(size: int, meta_mtime: str | None, last_modified: str, etag: str) -> ObjectInfo:
    meta = {"mtime": meta_mtime} if meta_mtime is not None else {}
    return ObjectInfo(size, _mtime(meta, _timestamp(last_modified)), etag)


def _timestamp(value: str) -> datetime:
    """botocore's timestamp parser, fast for the two forms S3 sends: RFC 1123 in headers
    (``Last-Modified``) and ISO 8601 in listings. botocore's own goes through dateutil, a third of
    the CPU of a small GET; anything else still goes to it."""
    try:
        return datetime.fromisoformat(value) if value[:4].isdigit() else parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError):
        return botocore.utils.parse_timestamp(value)


_CONNECT_TIMEOUT, _READ_TIMEOUT = 10, 120


def _pool_size(opts: S3Options) -> int:
    return max(10, min(opts.multipartcopymaxconcurrency, 64))


def make_client(opts: S3Options) -> S3Client:
    config = Config(
        signature_version="s3v4" if opts.v4auth else "s3",
        s3={"addressing_style": "path" if opts.forcepathstyle else "auto"},
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=_CONNECT_TIMEOUT,
        read_timeout=_READ_TIMEOUT,
        max_pool_connections=_pool_size(opts),
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    session = boto3.session.Session(botocore_session=core)
    client: S3Client = session.client(
        "s3",
        region_name=opts.region,
        endpoint_url=opts.endpoint_url,
        aws_access_key_id=opts.accesskey or None,
        aws_secret_access_key=opts.secretkey or None,
        use_ssl=opts.secure,
        verify=not opts.skipverify,
        config=config,
    )
    return client


class Bucket:
    """The bucket's object calls; ``key`` arguments are full object keys."""

    def __init__(self, opts: S3Options, client: S3Client | None = None) -> None:
        self.opts = opts
        self.name = opts.bucket
        self.client: S3Client = client or make_client(opts)
        self.transfer = TransferConfig(
            multipart_threshold=max(opts.multipartcopythresholdsize, 1),
            multipart_chunksize=opts.multipartcopychunksize,
            max_concurrency=min(opts.multipartcopymaxconcurrency, 64),
        )
        # GETs of links and HEADs of blobs (the hot paths) through reused presigned URLs; None: botocore only
        self.fast: FastReads | None = FastReads(
            self.client, self.name, verify=not opts.skipverify, connect_timeout=_CONNECT_TIMEOUT,
            read_timeout=_READ_TIMEOUT,
        )  # fmt: skip

    def write_args(self, mtime: float | None = None) -> dict[str, Any]:
        """Metadata, content type, encryption and storage class of every object written."""
        args: dict[str, Any] = {
            "Metadata": {"mtime": f"{time.time() if mtime is None else mtime:.6f}"},
            "ContentType": _OCTET,
        }
        if self.opts.encrypt:
            args["ServerSideEncryption"] = "aws:kms" if self.opts.keyid else "AES256"
            if self.opts.keyid:
                args["SSEKMSKeyId"] = self.opts.keyid
        if self.opts.storageclass != "NONE":
            args["StorageClass"] = self.opts.storageclass
        return args

    def head(self, key: str) -> ObjectInfo | None:
        if self.fast is not None:
            try:
                got = self.fast.head(key)
            except Unanswered:
                pass
            else:
                return None if got is None else _fast_info(*got)
        with s3_errors():
            try:
                h: HeadObjectOutputTypeDef = self.client.head_object(Bucket=self.name, Key=key)
            except ClientError as e:
                if is_not_found(e):
                    return None
                raise
        return ObjectInfo(h["ContentLength"], _mtime(h.get("Metadata", {}), h["LastModified"]), h["ETag"])

    def get(self, key: str) -> bytes | None:
        if self.fast is not None:
            with contextlib.suppress(Unanswered):
                return self.fast.get(key)
        with s3_errors():
            try:
                return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
            except ClientError as e:
                if is_not_found(e):
                    return None
                raise

    def get_range(self, key: str, start: int, length: int, etag: str | None) -> bytes:
        """``length`` bytes from ``start`` of the object as it was when ``etag`` was seen."""
        extra: dict[str, Any] = {"IfMatch": etag} if etag else {}
        with s3_errors():
            body = self.client.get_object(
                Bucket=self.name, Key=key, Range=f"bytes={start}-{start + length - 1}", **extra
            )["Body"]
            data = body.read()
        if len(data) != length:
            raise StorageError(f"s3aws: short read of {key}: {len(data)} of {length} bytes")
        return data

    def put(self, key: str, data: bytes) -> str:
        with s3_errors():
            return self.client.put_object(Bucket=self.name, Key=key, Body=data, **self.write_args())["ETag"]

    def copy(self, src: str, dst: str, size: int, mtime: float) -> None:
        """Server-side copy (multipart above ``multipartcopythresholdsize``), setting ``mtime``."""
        extra = {**self.write_args(mtime), "MetadataDirective": "REPLACE"}
        source: CopySourceTypeDef = {"Bucket": self.name, "Key": src}
        with s3_errors():
            if size <= min(self.opts.multipartcopythresholdsize, MAX_CHUNK_SIZE):
                self.client.copy_object(Bucket=self.name, Key=dst, CopySource=source, **extra)
            else:
                self.client.copy(source, self.name, dst, ExtraArgs=extra, Config=self.transfer)

    def objects(self, prefix: str, delimiter: str = "") -> Iterator[tuple[list[ObjectTypeDef], list[str]]]:
        """Pages of (objects, common prefixes) under ``prefix``."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix, Delimiter=delimiter
        )
        with s3_errors():
            for page in pages:
                yield page.get("Contents", []), [p["Prefix"] for p in page.get("CommonPrefixes", [])]

    def first(self, prefix: str) -> ObjectTypeDef | None:
        with s3_errors():
            found = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix, MaxKeys=1).get("Contents", [])
        return found[0] if found else None

    def delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch: list[ObjectIdentifierTypeDef] = [{"Key": k} for k in keys[i : i + 1000]]
            with s3_errors():
                resp = self.client.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})
            errors = [e for e in resp.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if errors:
                raise StorageError(f"s3aws: deleting {errors[0].get('Key')}: {errors[0].get('Message')}")

    def abort_uploads(self, key: str) -> int:
        """Abort the multipart uploads in progress at ``key`` or below ``key/``."""
        n = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.name, Prefix=key)
        with s3_errors():
            for page in pages:
                for up in page.get("Uploads", []):
                    k = up.get("Key", "")
                    if k == key or k.startswith(key + "/"):
                        self.abort(k, up["UploadId"])
                        n += 1
        return n

    # multipart uploads

    def start(self, key: str) -> str:
        with s3_errors():
            return self.client.create_multipart_upload(Bucket=self.name, Key=key, **self.write_args())["UploadId"]

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> CompletedPartTypeDef:
        with s3_errors():
            resp = self.client.upload_part(
                Bucket=self.name, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        return {"ETag": resp["ETag"], "PartNumber": number}

    def copy_parts(self, key: str, upload_id: str, size: int, etag: str | None) -> list[CompletedPartTypeDef]:
        """The first ``size`` bytes of the object now at ``key`` as the upload's first parts."""
        step = min(self.opts.multipartcopychunksize, MAX_CHUNK_SIZE - MIN_CHUNK_SIZE)
        extra: dict[str, Any] = {"CopySourceIfMatch": etag} if etag else {}
        parts: list[CompletedPartTypeDef] = []
        start = 0
        while start < size:
            end = min(start + step, size)
            if size - end < MIN_CHUNK_SIZE:
                end = size  # every part but the last must hold at least 5 MiB
            number = len(parts) + 1
            with s3_errors():
                resp = self.client.upload_part_copy(
                    Bucket=self.name, Key=key, UploadId=upload_id, PartNumber=number,
                    CopySource={"Bucket": self.name, "Key": key},
                    CopySourceRange=f"bytes={start}-{end - 1}", **extra,
                )  # fmt: skip
            parts.append({"ETag": resp["CopyPartResult"]["ETag"], "PartNumber": number})
            start = end
        return parts

    def complete(self, key: str, upload_id: str, parts: list[CompletedPartTypeDef]) -> str:
        with s3_errors():
            return self.client.complete_multipart_upload(
                Bucket=self.name, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )["ETag"]

    def abort(self, key: str, upload_id: str) -> None:
        with s3_errors():
            try:
                self.client.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
            except ClientError as e:
                if not is_not_found(e):
                    raise

    def presign_get(self, key: str, expires: int) -> str:
        with s3_errors():
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=expires
            )
