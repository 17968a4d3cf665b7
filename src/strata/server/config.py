"""Registry configuration: a YAML file shaped like distribution's ``config.yml``.

Besides distribution's keys: ``http.ratelimit.rate``/``burst`` (per-client requests per second
and burst, see :mod:`strata.server.ratelimit`), ``http.readtimeout``, ``gc.*`` (online garbage
collection), ``search.enabled`` and ``auth.token.*`` for the built-in token server.

Every key can be overridden from the environment: ``STRATA_REGISTRY_STORAGE_DELETE_ENABLED=true``
sets ``storage.delete.enabled``. Command-line flags (``--addr``, ``--root``) win over both.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from strata.errors import StrataError
from strata.server.configkeys import KNOWN, unknown_keys

__all__ = [
    "ENV_PREFIX",
    "TLS_VERSIONS",
    "ConfigError",
    "ConnectionLimits",
    "EndpointConfig",
    "GCConfig",
    "HtpasswdConfig",
    "RateLimitConfig",
    "RegistryConfig",
    "TokenConfig",
    "UploadPurgeConfig",
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
class UploadPurgeConfig:
    """``storage.maintenance.uploadpurging``: distribution's defaults, on unless disabled."""

    enabled: bool = True
    age: float = 168 * 3600.0
    interval: float = 24 * 3600.0
    dryrun: bool = False


@dataclass
class ConnectionLimits:
    """How long a client may take to send its request headers, stay idle between requests, and how
    many connections one client address may hold open (0: no cap)."""

    header_timeout: float = 30.0
    idle_timeout: float = 60.0
    per_client: int = 256


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class RegistryConfig:
    root: str | None = None
    inmemory: bool = False
    delete_enabled: bool = False
    addr: str = "127.0.0.1:5000"
    tls_certificate: str | None = None
    tls_key: str | None = None
    tls_clientcas: list[str] = field(default_factory=list)
    tls_minimum: str | None = None
    headers: dict[str, list[str]] = field(default_factory=dict)
    htpasswd: HtpasswdConfig | None = None
    token: TokenConfig | None = None
    notifications: list[EndpointConfig] = field(default_factory=list)
    gc: GCConfig = field(default_factory=GCConfig)
    max_manifest_size: int = MAX_MANIFEST_SIZE
    accesslog: bool = True
    read_timeout: float = 120.0
    ratelimit: RateLimitConfig = field(default_factory=RateLimitConfig)
    search: bool = True
    host: str | None = None
    trusted_proxies: list[Network] = field(default_factory=list)
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    debug_addr: str | None = None
    metrics_path: str | None = None
    uploadpurging: UploadPurgeConfig = field(default_factory=UploadPurgeConfig)
    warnings: list[str] = field(default_factory=list)
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
        node[parts[-1]] = yaml.safe_load(value)


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


_TOKEN_FILES = ("rootcertbundle", "signingkey", "htpasswd", "accessfile")


def _check_options(provider: str, opts: dict[str, Any]) -> None:
    """An auth option strata does not know is a misspelling that could leave auth open: refused."""
    known: dict[str, Any] = KNOWN["auth"][provider]
    for key in opts:
        if key not in known:
            raise _auth_error(provider, f'unknown option "{key}"')


def _check_token(raw: dict[str, Any]) -> None:
    """Files named must be named (an empty ``accessfile`` would grant every user everything), and an
    external token server's tokens need its certificates (distribution's words)."""
    _check_options("token", raw)
    for key in _TOKEN_FILES:
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise _auth_error("token", f'"{key}" must name a file')
    if "builtin" in raw and not _bool(raw["builtin"]) and not raw.get("rootcertbundle"):
        raise _auth_error("token", 'token auth requires a valid option string: "rootcertbundle"')


def _token(raw: Any) -> TokenConfig | None:
    if not isinstance(raw, dict):
        return None
    _check_token(raw)
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
        # an external token server (realm + rootcertbundle) replaces the built-in one unless asked for
        builtin=_bool(raw.get("builtin", not (raw.get("realm") and raw.get("rootcertbundle")))),
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


def _auth_error(provider: str, reason: str) -> ConfigError:
    return ConfigError(f"unable to configure authorization ({provider}): {reason}")


def _htpasswd(raw: Any) -> HtpasswdConfig:
    """distribution's checks: a realm and a path must be set, and the path must name a file."""
    opts = raw if isinstance(raw, dict) else {}
    realm, path = opts.get("realm"), opts.get("path")
    if not isinstance(realm, str):
        raise _auth_error("htpasswd", '"realm" must be set for htpasswd access controller')
    if not isinstance(path, str):
        raise _auth_error("htpasswd", '"path" must be set for htpasswd access controller')
    if not path.strip():
        raise _auth_error("htpasswd", f"failed to open htpasswd path open {path}: no such file or directory")
    _check_options("htpasswd", opts)
    return HtpasswdConfig(realm, path)


def _auth(raw: Any) -> tuple[HtpasswdConfig | None, TokenConfig | None]:
    """The one configured access controller; anything else refuses to start (never fails open)."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise ConfigError("auth must be a mapping with one access controller (htpasswd or token)")
    if len(raw) > 1:
        raise ConfigError(f"must provide exactly one type. Provided: [{' '.join(sorted(map(str, raw)))}]")
    for provider, options in raw.items():
        if provider == "htpasswd":
            return _htpasswd(options), None
        if provider == "token":
            token = _token(options if options is not None else {})
            if token is None:
                raise _auth_error("token", "options must be a mapping")
            return None, token
        raise _auth_error(str(provider), f"no access controller registered with name: {provider}")
    return None, None


def _uploadpurging(raw: Any) -> UploadPurgeConfig:
    if raw is None:
        return UploadPurgeConfig()
    if not isinstance(raw, dict):
        raise ConfigError("storage.maintenance.uploadpurging must be a mapping (enabled, age, interval, dryrun)")
    default = UploadPurgeConfig()
    cfg = UploadPurgeConfig(
        enabled=_bool(raw.get("enabled", True)),
        age=parse_duration(raw.get("age", default.age)),
        interval=parse_duration(raw.get("interval", default.interval)),
        dryrun=_bool(raw.get("dryrun", False)),
    )
    if cfg.enabled and (cfg.age <= 0 or cfg.interval <= 0):
        raise ConfigError("storage.maintenance.uploadpurging: age and interval must be positive")
    return cfg


def _proxies(raw: Any) -> list[Network]:
    """``http.trustedproxies``: addresses or networks whose X-Forwarded-* headers are believed."""
    items = [raw] if isinstance(raw, str) else (raw or [])
    if not isinstance(items, list):
        raise ConfigError("http.trustedproxies must be a list of addresses or networks")
    try:
        return [ipaddress.ip_network(str(item), strict=False) for item in items]
    except ValueError as e:
        raise ConfigError(f"invalid http.trustedproxies: {e}") from None


def _limits(http: Mapping[str, Any]) -> ConnectionLimits:
    d = ConnectionLimits()
    limits = ConnectionLimits(
        header_timeout=parse_duration(http.get("headertimeout", d.header_timeout)),
        idle_timeout=parse_duration(http.get("idletimeout", d.idle_timeout)),
        per_client=_int("http.maxconnsperclient", http.get("maxconnsperclient", d.per_client)),
    )
    if limits.header_timeout <= 0 or limits.idle_timeout <= 0 or limits.per_client < 0:
        raise ConfigError("http.headertimeout and http.idletimeout must be positive, http.maxconnsperclient >= 0")
    return limits


def _host(value: Any) -> str | None:
    """``http.host``: the registry's external URL (scheme and host), as distribution takes it."""
    if value is None or value == "":
        return None
    text = str(value).rstrip("/")
    if not re.match(r"^https?://[^/?#\s]+$", text):
        raise ConfigError(f"invalid http.host {value!r}: must be a URL such as https://registry.example.com")
    return text


def _debug(raw: Any) -> tuple[str | None, str | None]:
    """``http.debug``: the debug server's address and where it serves Prometheus metrics."""
    if not isinstance(raw, dict) or not raw.get("addr"):
        return None, None
    prom: dict[str, Any] = raw["prometheus"] if isinstance(raw.get("prometheus"), dict) else {}
    path = str(prom.get("path") or "/metrics") if _bool(prom.get("enabled", False)) else None
    return _addr(raw["addr"]), path


TLS_VERSIONS = ("tls1.0", "tls1.1", "tls1.2", "tls1.3")

_UNAPPLIED = {
    "http.tls.letsencrypt": "http.tls.letsencrypt is not supported: configure http.tls.certificate and http.tls.key",
    "http.tls.ciphersuites": "http.tls.ciphersuites is not supported: strata uses OpenSSL's defaults",
    "storage.maintenance.readonly": "storage.maintenance.readonly is not supported: strata would accept writes",
}


def _refuse_unapplied(raw: Mapping[str, Any]) -> None:
    """Settings distribution applies and strata cannot: ignoring one would leave the registry more open
    than configured (plain HTTP, weaker ciphers, writes), so they refuse to start. Off, they are fine."""
    for dotted, message in _UNAPPLIED.items():
        value = _get(raw, dotted)
        if dotted.endswith("readonly") and isinstance(value, Mapping):
            value = _bool(value.get("enabled", False))
        if value:
            raise ConfigError(message)


def _tls(tls: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """``http.tls.clientcas`` (client certificates required, signed by one of these CAs) and
    ``http.tls.minimumtls``."""
    cas = tls.get("clientcas")
    if cas is not None and (not isinstance(cas, list) or not all(isinstance(c, str) and c for c in cas)):
        raise ConfigError("invalid http.tls.clientcas: a list of CA certificate files")
    minimum = tls.get("minimumtls")
    if minimum is not None and str(minimum).lower() not in TLS_VERSIONS:
        raise ConfigError(f"invalid http.tls.minimumtls {minimum!r}: one of {', '.join(TLS_VERSIONS)}")
    return list(cas or []), str(minimum).lower() if minimum is not None else None


def _headers(raw: Any) -> dict[str, list[str]]:
    """``http.headers``: header name -> values added to every response."""
    if not isinstance(raw, dict):
        return {}
    return {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in raw.items()}


def _section(raw: Mapping[str, Any], dotted: str) -> dict[str, Any]:
    node = _get(raw, dotted, {})
    return node if isinstance(node, dict) else {}


def build_config(raw: dict[str, Any]) -> RegistryConfig:
    """The typed configuration from an already merged YAML tree."""
    gc = _section(raw, "gc")
    http = _section(raw, "http")
    htpasswd, token = _auth(_get(raw, "auth"))
    debug_addr, metrics_path = _debug(http.get("debug"))
    _refuse_unapplied(raw)
    clientcas, minimum = _tls(_section(raw, "http.tls"))
    return RegistryConfig(
        root=_get(raw, "storage.filesystem.rootdirectory"),
        inmemory=_get(raw, "storage.inmemory") is not None and _get(raw, "storage.filesystem") is None,
        delete_enabled=_bool(_get(raw, "storage.delete.enabled", False)),
        addr=_addr(http.get("addr", "127.0.0.1:5000")),
        tls_certificate=_get(raw, "http.tls.certificate"),
        tls_key=_get(raw, "http.tls.key"),
        tls_clientcas=clientcas,
        tls_minimum=minimum,
        headers=_headers(http.get("headers")),
        htpasswd=htpasswd,
        token=token,
        notifications=_endpoints(_get(raw, "notifications.endpoints")),
        gc=GCConfig(
            graceperiod=parse_duration(gc.get("graceperiod", 3600)),
            interval=parse_duration(gc.get("interval", 0)),
            deleteuntagged=_bool(gc.get("deleteuntagged", False)),
            uploadpurgeage=parse_duration(gc.get("uploadpurgeage", 7 * 86400)),
        ),
        max_manifest_size=_int("validation.manifests.maxsize", _get(raw, "validation.manifests.maxsize", MAX_MANIFEST_SIZE)),
        read_timeout=parse_duration(http.get("readtimeout", 120)),
        ratelimit=_ratelimit(http.get("ratelimit")),
        accesslog=not _bool(_get(raw, "log.accesslog.disabled", False)),
        search=_bool(_get(raw, "search.enabled", True)),
        host=_host(http.get("host")),
        trusted_proxies=_proxies(http.get("trustedproxies")),
        limits=_limits(http),
        debug_addr=debug_addr,
        metrics_path=metrics_path,
        uploadpurging=_uploadpurging(_get(raw, "storage.maintenance.uploadpurging")),
        warnings=_warnings(raw, htpasswd),
        raw=raw,
    )


def _warnings(raw: dict[str, Any], htpasswd: HtpasswdConfig | None) -> list[str]:
    out = [f"unknown configuration key {k!r} ignored" for k in unknown_keys(raw)]
    if htpasswd is not None and not os.path.exists(htpasswd.path):
        out.append(f"htpasswd file {htpasswd.path} does not exist: nobody can sign in until it does")
    return out


_PROTECTIVE = ("auth", "http.tls", "http.tls.certificate", "http.tls.key", "http.tls.clientcas")


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
    protected = [key for key in _PROTECTIVE if _get(raw, key)]
    _apply_env(raw, os.environ if env is None else env)
    for key in protected:
        if not _get(raw, key):  # an empty variable (unset in a template) must not switch auth or TLS off
            name = ENV_PREFIX + key.upper().replace(".", "_")
            raise ConfigError(f"{name} is empty: it would remove the {key} that {path} configures")
    if addr:
        raw.setdefault("http", {})["addr"] = addr
    if root:
        raw.setdefault("storage", {}).setdefault("filesystem", {})["rootdirectory"] = root
    return build_config(raw)
