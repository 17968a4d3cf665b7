"""``storage.s3`` parameters as distribution 2.8's s3-aws driver reads them, with its error texts.

Keys: ``bucket`` and ``region`` (required), ``regionendpoint``, ``accesskey``/``secretkey`` (else
boto3's usual credential chain), ``secure``, ``skipverify``, ``v4auth``, ``chunksize``,
``multipartcopychunksize``, ``multipartcopymaxconcurrency``, ``multipartcopythresholdsize``,
``rootdirectory``, ``forcepathstyle`` (default: on when ``regionendpoint`` is set, as 2.8 does),
``encrypt``, ``keyid`` and ``storageclass``. ``storage.redirect.disable`` is passed separately.
Values may be YAML scalars or strings (environment overrides arrive as strings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strata.server.config import ConfigError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "MIN_CHUNK_SIZE",
    "S3Options",
    "parse_options",
]

MIN_CHUNK_SIZE = 5 << 20  # S3's smallest part (every part but the last)
MAX_CHUNK_SIZE = 5 << 30  # S3's largest part
DEFAULT_CHUNK_SIZE = 2 * MIN_CHUNK_SIZE
DEFAULT_COPY_CHUNK_SIZE = 32 << 20
DEFAULT_COPY_MAX_CONCURRENCY = 100
DEFAULT_COPY_THRESHOLD = 32 << 20
_STORAGE_CLASSES = ("NONE", "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
                    "INTELLIGENT_TIERING", "OUTPOSTS", "GLACIER_IR")


@dataclass(frozen=True)
class S3Options:
    bucket: str
    region: str
    regionendpoint: str = ""
    accesskey: str = ""
    secretkey: str = ""
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    chunksize: int = DEFAULT_CHUNK_SIZE
    multipartcopychunksize: int = DEFAULT_COPY_CHUNK_SIZE
    multipartcopymaxconcurrency: int = DEFAULT_COPY_MAX_CONCURRENCY
    multipartcopythresholdsize: int = DEFAULT_COPY_THRESHOLD
    rootdirectory: str = ""
    forcepathstyle: bool = False
    encrypt: bool = False
    keyid: str = ""
    storageclass: str = "STANDARD"
    redirect: bool = True

    @property
    def endpoint_url(self) -> str | None:
        """``regionendpoint`` with a scheme (``secure`` picks it when the value has none)."""
        ep = self.regionendpoint
        if not ep:
            return None
        if "://" in ep:
            return ep
        return ("https://" if self.secure else "http://") + ep


def _go_repr(value: Any) -> str:
    """How Go's ``%#v`` shows a parameter value in distribution's messages."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bool(params: Mapping[str, Any], key: str, default: bool, label: str) -> bool:
    value = params.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value)
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ConfigError(f"The {label} parameter should be a boolean")


def _int(params: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = params.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"invalid value for {key}: {_go_repr(value)}")
    try:
        n = int(value, 0) if isinstance(value, str) else value
    except ValueError:
        raise ConfigError(f"{key} parameter must be an integer, {value} invalid")
    if not lo <= n <= hi:
        raise ConfigError(f"the {key} {n} parameter should be a number between {lo} and {hi} (inclusive)")
    return n


def _str(params: Mapping[str, Any], key: str, default: str = "") -> str:
    value = params.get(key)
    return default if value is None else str(value)


def _chunksize(params: Mapping[str, Any]) -> int:
    n = _int(params, "chunksize", DEFAULT_CHUNK_SIZE, -(1 << 63), (1 << 63) - 1)
    if n < MIN_CHUNK_SIZE:
        raise ConfigError(
            f"the chunksize {n} parameter should be a number that is larger than or equal to {MIN_CHUNK_SIZE}"
        )
    return min(n, MAX_CHUNK_SIZE)


def _storage_class(params: Mapping[str, Any]) -> str:
    value = _str(params, "storageclass", "STANDARD").upper()
    if value not in _STORAGE_CLASSES:
        raise ConfigError(f"The storageclass parameter must be one of {', '.join(_STORAGE_CLASSES)}")
    return value


def parse_options(params: Mapping[str, Any] | None, redirect: Mapping[str, Any] | None = None) -> S3Options:
    """Validated options from the ``storage.s3`` mapping and ``storage.redirect``."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ConfigError("storage.s3 must be a mapping of parameters")
    bucket, region, endpoint = _str(params, "bucket"), _str(params, "region"), _str(params, "regionendpoint")
    if not region:
        raise ConfigError("No region parameter provided")
    if not bucket:
        raise ConfigError("No bucket parameter provided")
    redirect_off = _bool(redirect or {}, "disable", False, "redirect.disable")
    return S3Options(
        bucket=bucket,
        region=region,
        regionendpoint=endpoint,
        accesskey=_str(params, "accesskey"),
        secretkey=_str(params, "secretkey"),
        secure=_bool(params, "secure", True, "secure"),
        skipverify=_bool(params, "skipverify", False, "skipVerify"),
        v4auth=_bool(params, "v4auth", True, "v4auth"),
        chunksize=_chunksize(params),
        multipartcopychunksize=_int(params, "multipartcopychunksize", DEFAULT_COPY_CHUNK_SIZE,
                                    MIN_CHUNK_SIZE, MAX_CHUNK_SIZE),
        multipartcopymaxconcurrency=_int(params, "multipartcopymaxconcurrency", DEFAULT_COPY_MAX_CONCURRENCY,
                                         1, (1 << 63) - 1),
        multipartcopythresholdsize=_int(params, "multipartcopythresholdsize", DEFAULT_COPY_THRESHOLD,
                                        0, MAX_CHUNK_SIZE),
        rootdirectory=_str(params, "rootdirectory"),
        forcepathstyle=_bool(params, "forcepathstyle", bool(endpoint), "forcepathstyle"),
        encrypt=_bool(params, "encrypt", False, "encrypt"),
        keyid=_str(params, "keyid"),
        storageclass=_storage_class(params),
        redirect=not redirect_off,
    )
