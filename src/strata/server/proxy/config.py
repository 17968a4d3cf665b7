"""The ``proxy`` section of the registry's config, parsed from the raw mapping.

distribution's keys make the whole registry a pull-through cache of one upstream::

    proxy:
      remoteurl: https://registry-1.docker.io
      username: alice          # optional: credentials for the upstream (never sent elsewhere)
      password: s3cret
      ttl: 168h                # a cached tag is re-checked upstream after this long (0: every pull)

strata adds, as zot's sync does, more upstreams chosen by name prefix, and local namespaces::

      timeout: 60s             # network timeout of one upstream read
      upstreams:
        - prefix: ghcr.io      # "ghcr.io/org/app" is "org/app" on https://ghcr.io
          remoteurl: https://ghcr.io
          username: ...        # password, ttl, timeout: as above (default: the section's)
      local: [team]            # "team/..." is an ordinary local repository: pushes allowed

The longest matching prefix wins (a ``local`` namespace beats an upstream of the same length); a name
no prefix matches is proxied to ``remoteurl`` when it is set, else it is local.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from strata.server.config import ConfigError, parse_duration
from strata.server.names import is_valid_name

__all__ = ["DEFAULT_TTL", "ProxyConfig", "Upstream", "parse_proxy_config"]

DEFAULT_TTL = 168 * 3600.0
DEFAULT_TIMEOUT = 60.0
_KEYS = {"remoteurl", "username", "password", "ttl", "timeout", "upstreams", "local"}
_UPSTREAM_KEYS = {"prefix", "remoteurl", "username", "password", "ttl", "timeout"}


@dataclass(frozen=True)
class Upstream:
    """One upstream registry; ``prefix`` is "" for ``proxy.remoteurl`` (every name no other prefix takes)."""

    prefix: str
    remoteurl: str
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    ttl: float = DEFAULT_TTL
    timeout: float = DEFAULT_TIMEOUT

    @property
    def netloc(self) -> str:
        return urlsplit(self.remoteurl).netloc

    @property
    def scheme(self) -> str:
        return urlsplit(self.remoteurl).scheme


@dataclass(frozen=True)
class ProxyConfig:
    upstreams: tuple[Upstream, ...] = ()
    local: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.upstreams)

    def route(self, name: str) -> tuple[Upstream, str] | None:
        """The upstream serving repository ``name`` and the name there; None for a local repository."""
        best: tuple[int, Upstream | None] = (-1, None)
        for ns in self.local:
            if _under(name, ns) and len(ns) >= best[0]:
                best = (len(ns), None)
        for up in self.upstreams:
            if (up.prefix == "" or _under(name, up.prefix)) and len(up.prefix) > best[0]:
                best = (len(up.prefix), up)
        chosen = best[1]
        if chosen is None:
            return None
        return chosen, name[len(chosen.prefix) + 1 :] if chosen.prefix else name


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + "/")


def _str(section: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
    value = section.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError(f"invalid {where}.{key}: not a string")
    return str(value)


def _remoteurl(section: Mapping[str, Any], where: str) -> str:
    url = _str(section, "remoteurl", where).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"invalid {where}.remoteurl {url!r}: an http:// or https:// URL of a registry")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            f"invalid {where}.remoteurl {url!r}: scheme, host and port only (credentials go in username/password)"
        )
    return url


def _duration(section: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = section.get(key)
    if value is None:
        return default
    seconds = parse_duration(value)
    if seconds < 0:
        raise ConfigError(f"invalid {where}.{key}: must not be negative")
    return seconds


def _upstream(section: Mapping[str, Any], where: str, prefix: str, defaults: Upstream | None) -> Upstream:
    unknown = sorted(set(section) - (_UPSTREAM_KEYS if prefix else _KEYS))
    if unknown:
        raise ConfigError(f"invalid {where}: unknown key {unknown[0]!r}")
    user, password = _str(section, "username", where), _str(section, "password", where)  # never another host's
    if bool(user) != bool(password):
        raise ConfigError(f"invalid {where}: username and password go together")
    return Upstream(
        prefix=prefix,
        remoteurl=_remoteurl(section, where),
        username=user,
        password=password,
        ttl=_duration(section, "ttl", where, defaults.ttl if defaults else DEFAULT_TTL),
        timeout=_duration(section, "timeout", where, defaults.timeout if defaults else DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT,
    )


def _prefix(value: Any, where: str) -> str:
    text = str(value).strip("/") if isinstance(value, str) else ""
    if not is_valid_name(text):
        raise ConfigError(f"invalid {where} {value!r}: a repository name prefix like docker.io or ghcr.io/org")
    return text


def _prefixed(section: Mapping[str, Any], defaults: Upstream) -> list[Upstream]:
    items = section.get("upstreams") or []
    if not isinstance(items, list):
        raise ConfigError("invalid proxy.upstreams: not a list")
    out: list[Upstream] = []
    for i, item in enumerate(items):
        where = f"proxy.upstreams[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"invalid {where}: not a mapping")
        prefix = _prefix(item.get("prefix"), f"{where}.prefix")
        if any(u.prefix == prefix for u in out):
            raise ConfigError(f"invalid {where}.prefix: {prefix!r} is configured twice")
        out.append(_upstream(item, where, prefix, defaults))
    return out


def _local(section: Mapping[str, Any]) -> tuple[str, ...]:
    items = section.get("local") or []
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list):
        raise ConfigError("invalid proxy.local: not a list of namespaces")
    return tuple(_prefix(ns, "proxy.local namespace") for ns in items)


def parse_proxy_config(raw: Mapping[str, Any]) -> ProxyConfig:
    """``ProxyConfig`` from the whole raw config; a clear ``ConfigError`` for anything wrong in ``proxy``."""
    section = raw.get("proxy")
    if section is None:
        return ProxyConfig()
    if not isinstance(section, Mapping):
        raise ConfigError("invalid proxy: not a mapping")
    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise ConfigError(f"invalid proxy: unknown key {unknown[0]!r}")
    ttl = _duration(section, "ttl", "proxy", DEFAULT_TTL)
    timeout = _duration(section, "timeout", "proxy", DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT
    defaults = Upstream("", "", ttl=ttl, timeout=timeout)
    upstreams = _prefixed(section, defaults)
    if section.get("remoteurl"):
        upstreams.append(_upstream(section, "proxy", "", None))
    elif section.get("username") or section.get("password"):
        raise ConfigError("invalid proxy: username and password need a remoteurl")
    if not upstreams:
        raise ConfigError("invalid proxy: set remoteurl or at least one of upstreams")
    return ProxyConfig(tuple(upstreams), _local(section))
