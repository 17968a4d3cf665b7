"""The configuration keys strata knows: distribution's ``config.yml`` keys and strata's own.

:func:`unknown_keys` lists the dotted names of keys in a configuration tree that strata does not
know (a misspelling, or a distribution feature strata does not have), so they are reported rather
than silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["KNOWN", "OPEN", "unknown_keys"]

OPEN: dict[str, Any] = {}
"""A section whose keys are not checked (driver parameters, middleware options, free maps)."""

_DURATIONS = {"enabled": None, "age": None, "interval": None, "dryrun": None}

_TOKEN = dict.fromkeys([
    "realm", "service", "issuer", "rootcertbundle", "autoredirect", "signingkey", "htpasswd", "accessfile",
    "anonymouspull", "expiration", "builtin", "refreshexpiration",
])

KNOWN: dict[str, Any] = {
    "version": None,
    "loglevel": None,
    "log": {"accesslog": {"disabled": None}, "level": None, "formatter": None, "fields": OPEN, "hooks": OPEN},
    "storage": {
        "filesystem": {"rootdirectory": None, "maxthreads": None},
        "inmemory": OPEN,
        "s3": OPEN,
        "delete": {"enabled": None},
        "redirect": {"disable": None},
        "cache": OPEN,
        "maintenance": {"uploadpurging": _DURATIONS, "readonly": {"enabled": None}},
    },
    "auth": {"htpasswd": {"realm": None, "path": None}, "token": _TOKEN, "silly": OPEN},
    "middleware": OPEN,
    "reporting": OPEN,
    "http": {
        "addr": None, "net": None, "prefix": None, "host": None, "secret": None, "relativeurls": None,
        "draintimeout": None, "headers": OPEN, "http2": OPEN,
        "tls": {"certificate": None, "key": None, "clientcas": None, "letsencrypt": OPEN,
                "minimumtls": None, "ciphersuites": None},
        "debug": {"addr": None, "prefix": None, "prometheus": {"enabled": None, "path": None}},
        "readtimeout": None, "headertimeout": None, "idletimeout": None, "maxconnsperclient": None,
        "trustedproxies": None,
        "ratelimit": {"rate": None, "burst": None, "maxclients": None},
    },
    "notifications": {"events": OPEN, "endpoints": None},
    "redis": OPEN,
    "health": OPEN,
    "proxy": OPEN,
    "compatibility": OPEN,
    "validation": {"enabled": None, "disabled": None, "manifests": {"urls": OPEN, "maxsize": None}},
    "policy": OPEN,
    "gc": {"interval": None, "graceperiod": None, "deleteuntagged": None, "uploadpurgeage": None},
    "search": {"enabled": None},
    "ui": OPEN,  # checked by strata.server.ui.config
}


def unknown_keys(raw: Mapping[str, Any], known: Mapping[str, Any] = KNOWN, prefix: str = "") -> list[str]:
    """Dotted names of the keys in ``raw`` that ``known`` does not list, in the order found."""
    out: list[str] = []
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if key not in known:
            out.append(name)
            continue
        spec = known[key]
        if spec is OPEN or not isinstance(spec, Mapping) or not isinstance(value, Mapping):
            continue
        out += unknown_keys(value, spec, name + ".")
    return out
