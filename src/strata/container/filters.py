"""Docker's ``--filter`` for ``ps`` and ``container prune``: values of one key are alternatives (OR),
different keys must all match (AND); unknown keys and bad values are refused with Docker's words."""

from __future__ import annotations

import time
from collections.abc import Callable

from strata.container.records import Container
from strata.errors import StrataError, UsageError

__all__ = ["PRUNE_KEYS", "PS_KEYS", "matcher", "parse_filters", "parse_timestamp"]

PS_KEYS = frozenset({"id", "name", "label", "exited", "status", "ancestor", "before", "since", "volume",
                     "network", "publish", "expose", "health", "isolation", "is-task"})
PRUNE_KEYS = frozenset({"until", "label", "label!"})
STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")

_DURATION = r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)"  # compiled (and cached by re) when a filter needs it
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


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


def _go_duration(text: str) -> float | None:
    import re  # here: ps without such a filter loads no re

    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    pos = 0
    total = 0.0
    for m in re.finditer(_DURATION, body):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        return None
    return sign * total


def parse_timestamp(value: str, now: float | None = None) -> float:
    """Docker's GetTimestamp: a Go duration back from now, a Unix time, or an RFC 3339 date/time."""
    current = time.time() if now is None else now
    duration = _go_duration(value)
    if duration is not None:
        return current - duration
    try:
        return float(value)
    except ValueError:
        pass
    from datetime import datetime  # here: ps without a time filter loads no datetime

    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise StrataError(f'failed to parse value as time or duration: "{value}"') from None
    if stamp.tzinfo is None:
        stamp = stamp.astimezone()
    return stamp.timestamp()


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


def matcher(
    filters: dict[str, list[str]],
    resolve: Callable[[str], Container],
    image_matches: Callable[[Container, str], bool] | None = None,
) -> Callable[[Container], bool]:
    """A predicate for the parsed ``filters``; ``resolve`` finds the before/since containers."""
    for status in filters.get("status", []):
        if status not in STATES:
            raise StrataError(f"Invalid filter 'status={status}'")
    for code in filters.get("exited", []):
        if not code.lstrip("-").isdigit():
            raise StrataError(f"Invalid filter 'exited={code}'")
    before = min((resolve(v).created for v in filters.get("before", [])), default=None)
    since = max((resolve(v).created for v in filters.get("since", [])), default=None)
    until = min((parse_timestamp(v) for v in filters.get("until", [])), default=None)

    def ok(c: Container) -> bool:
        checks: list[tuple[str, Callable[[str], bool]]] = [
            ("id", lambda v: _search(v, c.id)),
            ("name", lambda v: _search(v, "/" + c.name)),
            ("status", lambda v: v == c.state),
            ("exited", lambda v: c.state == "exited" and c.exit_code == int(v)),
            ("label", lambda v: _label_match(c, v)),
            ("network", lambda v: v == str(c.host_config.get("NetworkMode") or "default")),
            ("ancestor", lambda v: image_matches(c, v) if image_matches else v == c.image_name),
        ]
        for key, test in checks:
            if key in filters and not any(test(v) for v in filters[key]):
                return False
        if any(_label_match(c, v) for v in filters.get("label!", [])):
            return False
        if any(k in filters for k in ("volume", "publish", "expose", "health")):
            return False  # no volumes, ports or health checks: nothing matches
        if before is not None and c.created >= before:
            return False
        if since is not None and c.created <= since:
            return False
        return until is None or c.created < until

    return ok
