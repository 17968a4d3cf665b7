"""The ``ui`` section of the registry's config, parsed from the raw mapping.

::

    ui:
      enabled: true
      path: /ui            # where the UI is mounted (not /v2, /v1 or the token endpoint)
      pagesize: 25         # repositories per page
      sessionttl: 8h       # how long a sign-in lasts
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strata.server.config import ConfigError, parse_duration

__all__ = ["UIConfig", "parse_ui_config"]

_PATH_RE = re.compile(r"^(/(?!\.\.?(?:/|$))[A-Za-z0-9._-]+)+$")
_RESERVED = ("/v2", "/v1", "/metrics", "/debug", "/healthz", "/auth", "/token")
_KEYS = {"enabled", "path", "pagesize", "sessionttl"}


@dataclass(frozen=True)
class UIConfig:
    enabled: bool = False
    path: str = "/ui"
    pagesize: int = 25
    sessionttl: float = 8 * 3600.0


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def parse_ui_config(raw: Mapping[str, Any]) -> UIConfig:
    """``UIConfig`` from the whole raw config; a clear ``ConfigError`` for anything wrong in ``ui``."""
    section = raw.get("ui")
    if section is None:
        return UIConfig()
    if not isinstance(section, Mapping):
        raise ConfigError("invalid ui: not a mapping")
    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise ConfigError(f"invalid ui: unknown key {unknown[0]!r}")
    path = str(section.get("path", "/ui")).rstrip("/") or "/"
    if not _PATH_RE.match(path) or any(path == r or path.startswith(r + "/") for r in _RESERVED):
        raise ConfigError(f"invalid ui.path {path!r}: a path like /ui, outside the registry's own routes")
    try:
        pagesize = int(section.get("pagesize", 25))
    except (TypeError, ValueError):
        raise ConfigError("invalid ui.pagesize: not a number") from None
    if not 1 <= pagesize <= 500:
        raise ConfigError("invalid ui.pagesize: must be between 1 and 500")
    ttl = parse_duration(section.get("sessionttl", 8 * 3600))
    return UIConfig(_bool(section.get("enabled", False)), path, pagesize, ttl)
