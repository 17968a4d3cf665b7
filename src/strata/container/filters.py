"""Docker's ``--filter`` for ``ps`` and ``container prune``: values of one key are alternatives (OR),
different keys must all match (AND); unknown keys and bad values are refused with Docker's words."""

from __future__ import annotations

from collections.abc import Callable

from strata.container.records import Container
from strata.errors import StrataError, UsageError

__all__ = ["PRUNE_KEYS", "PS_KEYS", "matcher", "parse_filters", "parse_timestamp"]

PS_KEYS = frozenset({"id", "name", "label", "exited", "status", "ancestor", "before", "since", "volume",
                     "network", "publish", "expose", "health", "isolation", "is-task"})
PRUNE_KEYS = frozenset({"until", "label", "label!"})
HEALTH_VALUES = ("starting", "healthy", "unhealthy", "none")
STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse_filters(items: list[str], allowed: frozenset[str]) -> dict[str, list[str]]:
    """``key=value`` items grouped by key (``label!=x`` is the key ``label!``)."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f'invalid argument "{item}" for "-f, --filter" flag: bad format of filter '
                             "(expected name=value)")
        key = key.strip().lower()
        if key not in allowed:
            raise StrataError(f"Invalid filter '{key}'")
        out.setdefault(key, []).append(value)
    return out


def parse_timestamp(value: str, now: float | None = None) -> float:
    """Docker's GetTimestamp (``strata.compat.gotime``): a Go duration back from now, a Unix time, or
    an RFC 3339 date/time."""
    from strata.compat.gotime import get_timestamp

    return get_timestamp(value, now)


def _search(pattern: str, text: str) -> bool:
    import re

    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text


def _label_match(c: Container, wanted: str) -> bool:
    labels = c.config.get("Labels") or {}
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _port_filter(key: str, values: list[str]) -> set[str]:
    """The ``publish``/``expose`` values as ``port/proto`` keys (ranges expanded), as the daemon
    folds them (go-connections' SplitProtoPort and ParsePortRange, with their errors)."""
    from strata.compat.nat import go_port_range

    wanted: set[str] = set()
    for value in values:
        if ":" in value:
            raise StrataError(f"filter for '{key}' should not contain ':': {value}")
        parts = value.split("/")
        port, proto = ("", "") if not value or not parts[0] else (parts[0], (parts[1:] or ["tcp"])[0] or "tcp")
        try:
            first, last = go_port_range(port)
        except ValueError as err:
            raise StrataError(f"error while looking up for {key} {value}: {err}") from None
        wanted.update(f"{p}/{proto}" for p in range(first, last + 1))
    return wanted


def _mounts_any(c: Container, wanted: list[str]) -> bool:
    """Docker's ``volume`` filter: a mount's destination, or its volume name (a bind's source)."""
    for m in c.mounts:
        if m.get("Destination") in wanted or (m.get("Name") or m.get("Source")) in wanted:
            return True
    return False


def _health(c: Container) -> str:
    return str(c.health.get("Status") or "none") if c.health else "none"


def _on_network(c: Container, value: str) -> bool:
    """Docker's ``network`` filter: a network the container is connected to, by name (``--network`` or
    ``network connect``), or by a prefix of its ID once the container has started (Docker fills the
    endpoint's NetworkID then)."""
    if value in c.networks:
        return True
    return c.state != "created" and any(str(ep.get("NetworkID") or "").startswith(value) for ep in c.networks.values())


def _is_task(values: list[str] | None) -> None:
    """The daemon's ``is-task``: ``true`` or ``false`` (no other spelling), else its error with the values."""
    if values is not None and "true" not in values and "false" not in values:
        raise StrataError(f"Invalid filter 'is-task=[{' '.join(values)}]'")


def _live_ports(c: Container, public: bool) -> set[str]:
    """A running container's ports as the daemon's list sees them (from its live endpoint, as ``ps``'s
    PORTS column): the host ports published (``public``) or every container port, ``port/proto``."""
    if not c.running or not any(ep.get("IPAddress") for ep in c.networks.values()):
        return set()
    maps = [(int(p["host_port"]), int(p["container_port"]), str(p.get("protocol") or "tcp")) for p in c.ports]
    if public:
        return {f"{host}/{proto}" for host, _, proto in maps}
    exposed = set(c.config.get("ExposedPorts") or {})
    return exposed | {f"{port}/{proto}" for _, port, proto in maps}


def matcher(
    filters: dict[str, list[str]],
    resolve: Callable[[str], Container],
    image_matches: Callable[[Container, str], bool] | None = None,
) -> Callable[[Container], bool]:
    """A predicate for the parsed ``filters``; ``resolve`` finds the before/since containers."""
    for status in filters.get("status", []):
        if status not in STATES:
            raise StrataError(f"Invalid filter 'status={status}'")
    for code in filters.get("exited", []):  # the daemon's strconv.Atoi, its words
        digits = code[1:] if code[:1] in "+-" else code
        if not digits or not all("0" <= ch <= "9" for ch in digits):
            raise StrataError(f'strconv.Atoi: parsing "{code}": invalid syntax')
        if not -(2**63) <= int(code) < 2**63:
            raise StrataError(f'strconv.Atoi: parsing "{code}": value out of range')
    before = min((resolve(v).created for v in filters.get("before", [])), default=None)
    since = max((resolve(v).created for v in filters.get("since", [])), default=None)
    until = min((parse_timestamp(v) for v in filters.get("until", [])), default=None)
    for value in filters.get("health", []):
        if value not in HEALTH_VALUES:
            raise StrataError(f"Unrecognised filter value for health: {value}")
    _is_task(filters.get("is-task"))
    publish = _port_filter("publish", filters.get("publish", []))
    expose = _port_filter("expose", filters.get("expose", []))

    def ok(c: Container) -> bool:
        checks: list[tuple[str, Callable[[str], bool]]] = [
            ("id", lambda v: _search(v, c.id)),
            ("name", lambda v: _search(v, "/" + c.name)),
            ("status", lambda v: v == c.state),
            ("exited", lambda v: c.state == "exited" and c.exit_code == int(v)),
            ("label", lambda v: _label_match(c, v)),
            ("network", lambda v: _on_network(c, v)),
            ("ancestor", lambda v: image_matches(c, v) if image_matches else v == c.image_name),
        ]
        for key, test in checks:
            if key in filters and not any(test(v) for v in filters[key]):
                return False
        if any(_label_match(c, v) for v in filters.get("label!", [])):
            return False
        if "volume" in filters and not _mounts_any(c, filters["volume"]):
            return False
        if "true" in filters.get("is-task", []):  # no container here is a swarm task
            return False
        if "health" in filters and _health(c) not in filters["health"]:
            return False
        if publish and not publish & _live_ports(c, public=True):
            return False
        if expose and not expose & _live_ports(c, public=False):
            return False
        if before is not None and c.created >= before:
            return False
        if since is not None and c.created <= since:
            return False
        return until is None or c.created < until

    return ok
