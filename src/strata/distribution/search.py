"""``search``: Docker Hub's ``/v1/search`` API, or a private registry's, else its ``/v2/_catalog`` filtered.

Docker Hub searches go to ``https://index.docker.io/v1/search?q=TERM&n=LIMIT``. For ``REGISTRY/TERM`` the
registry's own ``/v1/search`` is asked first; where it has none (CNCF distribution answers 404) the
catalog is listed and filtered by substring, as podman does (Docker answers ``Unexpected status code 404``
there). Names are printed as the registry gives them, without the registry's host, as Docker prints them. ``filter_results`` applies Docker's
``--filter stars=N``, ``is-official=BOOL`` and ``is-automated=BOOL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from strata.distribution.client import RegistryClient
from strata.distribution.hosts import DOCKER_HUB, normalize_host
from strata.errors import RegistryError, StrataError, TransportError, UsageError
from strata.image.spec import load_json

__all__ = ["HUB_SEARCH_URL", "SearchResult", "filter_results", "parse_filters", "search", "split_term"]

HUB_SEARCH_URL = "https://index.docker.io/v1/search"


@dataclass(frozen=True)
class SearchResult:
    name: str
    description: str = ""
    star_count: int = 0
    is_official: bool = False
    is_automated: bool = False


def split_term(term: str) -> tuple[str, str]:
    """``localhost:5000/x`` → (``localhost:5000``, ``x``); a term without a registry searches Docker Hub."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return normalize_host(first), rest
    return DOCKER_HUB, term


def _parse_v1(data: bytes) -> list[SearchResult]:
    try:
        obj = load_json(data, "search response")
    except StrataError:
        raise TransportError("invalid search response: not JSON") from None
    out: list[SearchResult] = []
    for r in obj.get("results") or [] if isinstance(obj, dict) else []:
        if not isinstance(r, dict):
            continue
        out.append(
            SearchResult(
                name=str(r.get("name", "")),
                description=str(r.get("description") or ""),
                star_count=_count(r.get("star_count")),
                is_official=bool(r.get("is_official")),
                is_automated=bool(r.get("is_automated") or r.get("is_trusted")),
            )
        )
    return out


def _count(value: object) -> int:
    """A star count; what is not a whole number counts as none."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def search(client: RegistryClient, term: str, limit: int = 25) -> list[SearchResult]:
    """Search ``client``'s registry for ``term`` (the part after any registry prefix)."""
    if not 1 <= limit <= 100:
        raise StrataError(f"Limit {limit} is outside the range of [1, 100]")  # the daemon's error: exit 1
    query = urlencode({"q": term, "n": str(limit)})
    if client.registry == DOCKER_HUB:
        resp = client.request("GET", f"{HUB_SEARCH_URL}?{query}")
        if resp.status != 200:
            resp.close()
            raise StrataError(f"Unexpected status code {resp.status}")
        return _parse_v1(resp.drain(8 << 20))[:limit]
    try:
        client.ping()  # learns the registry's auth scheme, so the search is sent with credentials
    except StrataError:
        pass
    resp = client.request("GET", f"/v1/search?{query}", scopes=["registry:catalog:*"])
    if resp.status == 200:
        return _parse_v1(resp.drain(8 << 20))[:limit]  # the names as the registry gives them, as Docker
    status = resp.status
    resp.drain()
    try:
        repos = client.catalog()
    except RegistryError:
        raise StrataError(f"Unexpected status code {status}") from None
    hits = [r for r in repos if term.lower() in r.lower()]
    return [SearchResult(r) for r in hits][:limit]


def _bool(value: str, key: str) -> bool:
    v = value.lower()
    if v in ("true", "1", "t"):
        return True
    if v in ("false", "0", "f"):
        return False
    raise StrataError(f"Invalid filter '{key}={value}'")


def parse_filters(filters: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in filters:
        key, sep, value = f.partition("=")
        key = key.strip().lower()
        if not sep:
            raise UsageError("bad format of filter (expected name=value)")
        if key not in ("stars", "is-official", "is-automated"):
            raise StrataError(f"Invalid filter '{key}'")  # the daemon's error: exit 1
        out[key] = value.strip()
    return out


def filter_results(results: list[SearchResult], filters: dict[str, str]) -> list[SearchResult]:
    out = results
    if "stars" in filters:
        try:
            n = int(filters["stars"])
        except ValueError:
            raise StrataError(f"Invalid filter 'stars={filters['stars']}'") from None
        out = [r for r in out if r.star_count >= n]
    if "is-official" in filters:
        want = _bool(filters["is-official"], "is-official")
        out = [r for r in out if r.is_official == want]
    if "is-automated" in filters:
        want = _bool(filters["is-automated"], "is-automated")
        out = [r for r in out if r.is_automated == want]
    return out
