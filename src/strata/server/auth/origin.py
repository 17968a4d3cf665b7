"""The registry's public URL as a client sees it: where the built-in token server's realm points.

``http.host`` (the external URL) wins. Otherwise the scheme is ``https`` when the registry serves
TLS and ``http`` when it does not, and the host is the request's ``Host``. ``X-Forwarded-Proto`` and
``X-Forwarded-Host`` are believed only from a configured trusted proxy (``http.trustedproxies``),
and never turn a TLS registry's realm into ``http``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web

from strata.server.config import Network

__all__ = ["PublicOrigin"]

_HOST_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$")


def _first(value: str | None) -> str:
    return (value or "").split(",", 1)[0].strip()


@dataclass
class PublicOrigin:
    host: str | None = None
    tls: bool = False
    trusted_proxies: Sequence[Network] = field(default_factory=list)
    fallback_host: str = "localhost"

    def _trusted(self, request: web.Request) -> bool:
        try:
            peer = ipaddress.ip_address((request.remote or "").split("%", 1)[0])
        except ValueError:
            return False
        return any(peer in net for net in self.trusted_proxies)

    def url(self, request: web.Request) -> str:
        """``scheme://host`` of the registry for this request."""
        if self.host:
            return self.host
        scheme = "https" if self.tls or request.secure else "http"
        host = request.headers.get("Host", "")
        if self._trusted(request):
            proto = _first(request.headers.get("X-Forwarded-Proto")).lower()
            if proto == "https" or (proto == "http" and scheme == "http"):
                scheme = proto
            host = _first(request.headers.get("X-Forwarded-Host")) or host
        if not _HOST_RE.match(host):
            host = self.fallback_host
        return f"{scheme}://{host}"
