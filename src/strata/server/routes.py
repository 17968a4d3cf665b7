"""The registry API's named routes, matched against the path after ``/v2/``.

Repository names contain slashes, so one catch-all aiohttp route hands the tail here and these
patterns (tried in order) split it into a route name and its parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Route", "match_v2"]

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("base", re.compile(r"^$")),
    ("catalog", re.compile(r"^_catalog$")),
    ("blob-upload", re.compile(r"^(?P<name>.+)/blobs/uploads/?$")),
    ("blob-upload-chunk", re.compile(r"^(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)$")),
    ("blob", re.compile(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$")),
    ("manifest", re.compile(r"^(?P<name>.+)/manifests/(?P<reference>[^/]+)$")),
    ("tags", re.compile(r"^(?P<name>.+)/tags/list$")),
    ("referrers", re.compile(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$")),
]


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    params: dict[str, str]

    @property
    def repo(self) -> str | None:
        return self.params.get("name")


def match_v2(tail: str) -> Route | None:
    for name, pattern in _PATTERNS:
        m = pattern.match(tail)
        if m:
            return Route(name, m.groupdict())
    return None
