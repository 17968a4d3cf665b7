"""Registry configuration: a YAML file shaped like distribution's ``config.yml``.

Besides distribution's keys: ``http.ratelimit.rate``/``burst`` (per-client requests per second
and burst, see :mod:`strata.server.ratelimit`), ``http.readtimeout``, ``gc.*`` (online garbage
collection), ``search.enabled`` and ``auth.token.*`` for the built-in token server.

Every key can be overridden from the environment: ``STRATA_REGISTRY_STORAGE_DELETE_ENABLED=true``
sets ``storage.delete.enabled``. Command-line flags (``--addr``, ``--root``) win over both.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from strata.errors import StrataError

__all__ = [
    "ENV_PREFIX",
    "ConfigError",
    "EndpointConfig",
    "GCConfig",
    "HtpasswdConfig",
    "RateLimitConfig",
    "RegistryConfig",
    "TokenConfig",
    "build_config",
    "load_config",
    "parse_duration",
]

ENV_PREFIX = "STRATA_REGISTRY_"
MAX_MANIFEST_SIZE = 4 << 20


class ConfigError(StrataError):
    pass


@dataclass
class HtpasswdConfig:
    realm: str
    path: str


@dataclass
class TokenConfig:
    realm: str | None
    service: str
    issuer: str
    rootcertbundle: str | None = None
    signingkey: str | None = None
    htpasswd: str | None = None
    accessfile: str | None = None
    anonymouspull: bool = False
    expiration: float = 300.0
    builtin: bool = True
    refreshexpiration: float = 90 * 86400.0


@dataclass
class EndpointConfig:
    name: str
    url: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    timeout: float = 1.0
    threshold: int = 10
    backoff: float = 1.0
    ignoredmediatypes: list[str] = field(default_factory=list)
    ignoredactions: list[str] = field(default_factory=list)


@dataclass
class RateLimitConfig:
    """``http.ratelimit``: per-client token bucket; off while ``rate`` is 0."""

    rate: float = 0.0
    burst: int = 0
    maxclients: int = 10_000

    @property
    def enabled(self) -> bool:
        return self.rate > 0


@dataclass
class GCConfig:
    graceperiod: float = 3600.0
    interval: float = 0.0
    deleteuntagged: bool = False
    uploadpurgeage: float = 7 * 86400.0


@dataclass
class RegistryConfig:
    root: str | None = None
    inmemory: bool = False
    delete_enabled: bool = True
    addr: str = "127.0.0.1:5000"
    tls_certificate: str | None = None
    tls_key: str | None = None
    htpasswd: HtpasswdConfig | None = None
    token: TokenConfig | None = None
    notifications: list[EndpointConfig] = field(default_factory=list)
    gc: GCConfig = field(default_factory=GCConfig)
    max_manifest_size: int = MAX_MANIFEST_SIZE
    accesslog: bool = True
    read_timeout: float = 120.0
    ratelimit: RateLimitConfig = field(default_factory=RateLimitConfig)
    search: bool = True
    raw: dict[str, Any] = field(default_factory=dict)


_DUR_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"1h"``, ``"250ms"``."""
    if isinstance(value, bool):
        raise ConfigError(f"invalid duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    m = _DUR_RE.match(str(value).strip())
    if not m:
        raise ConfigError(f"invalid duration: {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        parts = key[len(ENV_PREFIX) :].lower().split("_")
        node = raw
        for p in parts[:-1]:
            child = node.get(p)
            if not isinstance(child, dict):
                child = {}
                node[p] = child
            node = child
        node[parts[-1]] = yaml.safe_load(value) if value else value


def _get(raw: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = raw
    for p in dotted.split("."):
        if not isinstance(node, Mapping) or p not in node:
            return default
        node = node[p]
    return node


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


def _endpoints(raw: Any) -> list[EndpointConfig]:
    out: list[EndpointConfig] = []
    for ep in raw or []:
        if not isinstance(ep, dict) or _bool(ep.get("disabled", False)):
            continue
        headers = {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in (ep.get("headers") or {}).items()}
        out.append(
            EndpointConfig(
                name=str(ep.get("name", "endpoint")),
                url=str(ep["url"]),
                headers=headers,
                timeout=parse_duration(ep.get("timeout", 1)),
                threshold=int(ep.get("threshold", 10)),
                backoff=parse_duration(ep.get("backoff", 1)),
                ignoredmediatypes=list(ep.get("ignoredmediatypes") or []),
                ignoredactions=list((ep.get("ignore") or {}).get("actions") or []),
            )
        )
    return out


def _token(raw: Any) -> TokenConfig | None:
    if not isinstance(raw, dict):
        return None
    return TokenConfig(
        realm=raw.get("realm"),
        service=str(raw.get("service", "strata-registry")),
        issuer=str(raw.get("issuer", "strata-token-issuer")),
        rootcertbundle=raw.get("rootcertbundle"),
        signingkey=raw.get("signingkey"),
        htpasswd=raw.get("htpasswd"),
        accessfile=raw.get("accessfile"),
        anonymouspull=_bool(raw.get("anonymouspull", False)),
        expiration=parse_duration(raw.get("expiration", 300)),
        builtin=_bool(raw.get("builtin", True)),
        refreshexpiration=parse_duration(raw.get("refreshexpiration", 90 * 86400)),
    )


def _int(key: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid {key}: {value!r} is not a number") from None


def _addr(value: Any) -> str:
    """``http.addr`` as ``[host]:port``; refused here with Go's words rather than when listening."""
    addr = str(value)
    _, sep, port = addr.rpartition(":")
    if not sep:
        raise ConfigError(f"listen tcp: address {addr}: missing port in address")
    if not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"listen tcp: address {addr}: invalid port")
    return addr


def _ratelimit(raw: Any) -> RateLimitConfig:
    if raw is None:
        return RateLimitConfig()
    if not isinstance(raw, dict):
        raise ConfigError("http.ratelimit must be a mapping (rate, burst)")
    try:
        rate = float(raw.get("rate", 0) or 0)
        burst = int(raw.get("burst", 0) or 0)
        maxclients = int(raw.get("maxclients", 10_000))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid http.ratelimit: {e}")
    if rate < 0 or burst < 0 or maxclients < 1:
        raise ConfigError("invalid http.ratelimit: rate and burst must not be negative")
    return RateLimitConfig(rate, burst or max(1, math.ceil(rate)), maxclients)


def build_config(raw: dict[str, Any]) -> RegistryConfig:
    """The typed configuration from an already merged YAML tree."""
    htp = _get(raw, "auth.htpasswd")
    gc = _get(raw, "gc", {}) or {}
    cfg = RegistryConfig(
        root=_get(raw, "storage.filesystem.rootdirectory"),
        inmemory=_get(raw, "storage.inmemory") is not None and _get(raw, "storage.filesystem") is None,
        delete_enabled=_bool(_get(raw, "storage.delete.enabled", True)),
        addr=_addr(_get(raw, "http.addr", "127.0.0.1:5000")),
        tls_certificate=_get(raw, "http.tls.certificate"),
        tls_key=_get(raw, "http.tls.key"),
        htpasswd=HtpasswdConfig(str(htp.get("realm", "strata-registry")), str(htp["path"]))
        if isinstance(htp, dict) and htp.get("path")
        else None,
        token=_token(_get(raw, "auth.token")),
        notifications=_endpoints(_get(raw, "notifications.endpoints")),
        gc=GCConfig(
            graceperiod=parse_duration(gc.get("graceperiod", 3600)),
            interval=parse_duration(gc.get("interval", 0)),
            deleteuntagged=_bool(gc.get("deleteuntagged", False)),
            uploadpurgeage=parse_duration(gc.get("uploadpurgeage", 7 * 86400)),
        ),
        max_manifest_size=_int("validation.manifests.maxsize", _get(raw, "validation.manifests.maxsize", MAX_MANIFEST_SIZE)),
        read_timeout=parse_duration(_get(raw, "http.readtimeout", 120)),
        ratelimit=_ratelimit(_get(raw, "http.ratelimit")),
        accesslog=not _bool(_get(raw, "log.accesslog.disabled", False)),
        search=_bool(_get(raw, "search.enabled", True)),
        raw=raw,
    )
    if cfg.htpasswd and cfg.token:
        raise ConfigError("configure only one of auth.htpasswd and auth.token")
    return cfg


def load_config(
    path: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    addr: str | None = None,
    root: str | None = None,
) -> RegistryConfig:
    """Read ``path`` (optional), apply environment overrides, then the flags."""
    raw: dict[str, Any] = {}
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                loaded = yaml.safe_load(f)
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror}")
        except yaml.YAMLError as e:
            raise ConfigError(f"invalid config {path}: {e}")
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"invalid config {path}: not a mapping")
        raw = loaded or {}
    _apply_env(raw, os.environ if env is None else env)
    if addr:
        raw.setdefault("http", {})["addr"] = addr
    if root:
        raw.setdefault("storage", {}).setdefault("filesystem", {})["rootdirectory"] = root
    return build_config(raw)
