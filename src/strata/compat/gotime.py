"""Go's ``time.ParseDuration``, Docker's ``GetTimestamp`` (``--filter until=``, ``--since``) and RFC 3339
times as Go writes them (``parse_time``)."""

from __future__ import annotations

import time
from datetime import datetime

from strata.errors import StrataError

__all__ = ["DurationError", "duration_seconds", "get_timestamp", "parse_duration", "parse_time"]

_NS: dict[str, int] = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
# patterns, compiled (and cached by re) on first use: listing commands load this module but parse no duration
_DURATION = r"([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+|0)"
_PART = r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)"
_MAX_NS = 2**63 - 1
_UNIX = r"\d+(\.\d+)?"


class DurationError(StrataError):
    """Go's ``time: invalid duration "TEXT"``."""


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``: a signed sequence of decimal numbers with units (``1h30m``,
    ``-1.5h``, ``300ms``, ``2h45m0.5s``; a bare ``0``), in nanoseconds, truncated as Go does."""
    import re  # here: the listing commands load this module and parse no duration

    m = re.fullmatch(_DURATION, text)
    if m is None:
        raise DurationError(f'time: invalid duration "{text}"')
    total = sum(_nanoseconds(num, _NS[unit]) for num, unit in re.findall(_PART, m.group(2)))
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
    import re

    if re.fullmatch(_UNIX, value):
        return float(value)
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise StrataError(f'failed to parse value as time or duration: "{value}"') from None
    return (stamp if stamp.tzinfo else stamp.astimezone()).timestamp()


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with up to nanosecond precision (0 if unparsable)."""
    if not text:
        return 0.0
    try:
        main, _, rest = text.partition(".")
        if rest:
            digits = ""
            i = 0
            while i < len(rest) and rest[i].isdigit():
                digits += rest[i]
                i += 1
            tz = rest[i:]
            frac = float("0." + digits) if digits else 0.0
        else:
            tz = main[19:]
            main = main[:19]
            frac = 0.0
        tz = "+00:00" if tz in ("Z", "z", "") else tz
        return datetime.fromisoformat(main[:19] + tz).timestamp() + frac
    except ValueError:
        return 0.0
