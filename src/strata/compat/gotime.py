"""Go's ``time.ParseDuration`` and Docker's ``GetTimestamp`` (``--filter until=``, ``--since``)."""

from __future__ import annotations

import re
import time
from datetime import datetime

from strata.errors import StrataError

__all__ = ["DurationError", "duration_seconds", "get_timestamp", "parse_duration"]

_NS: dict[str, int] = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION = re.compile(r"([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+|0)")
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_MAX_NS = 2**63 - 1
_UNIX = re.compile(r"\d+(\.\d+)?")


class DurationError(StrataError):
    """Go's ``time: invalid duration "TEXT"``."""


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``: a signed sequence of decimal numbers with units (``1h30m``,
    ``-1.5h``, ``300ms``, ``2h45m0.5s``; a bare ``0``), in nanoseconds, truncated as Go does."""
    m = _DURATION.fullmatch(text)
    if m is None:
        raise DurationError(f'time: invalid duration "{text}"')
    total = sum(_nanoseconds(num, _NS[unit]) for num, unit in _PART.findall(m.group(2)))
    if total > _MAX_NS:
        raise DurationError(f'time: invalid duration "{text}"')
    return -total if m.group(1) == "-" else total


def _nanoseconds(number: str, unit: int) -> int:
    """``number`` (``1``, ``1.5``, ``.5``, ``1.``) times ``unit``, the fraction truncated as Go's does."""
    whole, _, frac = number.partition(".")
    scale: int = 10 ** len(frac)
    return int(whole or 0) * unit + (int(frac or 0) * unit) // scale


def duration_seconds(text: str) -> float | None:
    """``parse_duration`` in seconds, or ``None`` when ``text`` is not a Go duration."""
    try:
        return parse_duration(text) / 1e9
    except DurationError:
        return None


def get_timestamp(value: str, now: float | None = None) -> float:
    """Docker's ``GetTimestamp`` as epoch seconds: a Go duration back from ``now``, a Unix time
    (``1700000000``, ``1700000000.5``) or an RFC 3339 date/time (local time when it has no zone)."""
    seconds = duration_seconds(value)
    if seconds is not None:
        return (time.time() if now is None else now) - seconds
    if _UNIX.fullmatch(value):
        return float(value)
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise StrataError(f'failed to parse value as time or duration: "{value}"') from None
    return (stamp if stamp.tzinfo else stamp.astimezone()).timestamp()
