"""Go's ``time.ParseDuration`` and ``Duration.String``, Docker's ``GetTimestamp`` (``--filter until=``, ``--since``) and RFC 3339
times as Go writes them (``parse_time``)."""

from __future__ import annotations

import time

from strata.errors import StrataError

__all__ = [
    "DurationError", "duration_seconds", "format_duration", "get_timestamp", "go_quote", "parse_duration", "parse_time",
]

_NS: dict[str, int] = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_MAX_NS = 2**63 - 1
_UNIX = r"\d+(\.\d+)?"


class DurationError(StrataError, ValueError):
    """Go's ``time: invalid duration "TEXT"`` (``missing unit``, ``unknown unit``): a ValueError too."""


def go_quote(text: str) -> str:
    """Go's ``time.quote``: double quotes, ``"`` and ``\\`` escaped, other bytes than printable ASCII
    as ``\\xNN``."""
    out: list[str] = []
    for ch in text:
        if ch >= "\x80" or ch < " ":
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape"))
        else:
            out.append("\\" + ch if ch in '"\\' else ch)
    return '"' + "".join(out) + '"'


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``: a signed sequence of decimal numbers with units (``1h30m``,
    ``-1.5h``, ``300ms``, ``2h45m0.5s``; a bare ``0``), in nanoseconds, truncated as Go does; Go's
    errors word for word (``time: missing unit in duration "5"``, ``unknown unit "x"``)."""
    body = text[1:] if text[:1] in ("-", "+") else text
    if body == "0":
        return 0
    if not body:
        raise DurationError(f"time: invalid duration {go_quote(text)}")
    total, i = 0, 0
    while i < len(body):
        number, i = _number(body, i, text)
        start = i
        while i < len(body) and not (body[i] == "." or "0" <= body[i] <= "9"):
            i += 1
        if i == start:
            raise DurationError(f"time: missing unit in duration {go_quote(text)}")
        unit = _NS.get(body[start:i])
        if unit is None:
            raise DurationError(f"time: unknown unit {go_quote(body[start:i])} in duration {go_quote(text)}")
        total += _nanoseconds(number, unit)
        if total > 2**63:
            raise DurationError(f"time: invalid duration {go_quote(text)}")
    if text[:1] == "-":
        return -total
    if total > _MAX_NS:
        raise DurationError(f"time: invalid duration {go_quote(text)}")
    return total


def _number(body: str, i: int, text: str) -> tuple[str, int]:
    """The ``[0-9]*(\\.[0-9]*)?`` at ``body[i:]`` (some digit in it) and the index after it."""
    start = i
    while i < len(body) and "0" <= body[i] <= "9":
        i += 1
    if i < len(body) and body[i] == ".":
        i += 1
        while i < len(body) and "0" <= body[i] <= "9":
            i += 1
    if i - start == (1 if "." in body[start:i] else 0):  # no digit at all: "", ".", or not a number
        raise DurationError(f"time: invalid duration {go_quote(text)}")
    return body[start:i], i


def _nanoseconds(number: str, unit: int) -> int:
    """``number`` (``1``, ``1.5``, ``.5``, ``1.``) times ``unit``, the fraction truncated as Go's does."""
    whole, _, frac = number.partition(".")
    scale: int = 10 ** len(frac)
    return int(whole or 0) * unit + (int(frac or 0) * unit) // scale


def format_duration(ns: int) -> str:
    """Go's ``Duration.String``: ``1h2m3.5s``, ``1m30s``, ``1.5ms``, ``0s``, as Docker's messages."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 10**9:
        for unit, scale in (("ns", 1), ("µs", 10**3), ("ms", 10**6)):
            if u < scale * 1000:
                return sign + _fraction(u, scale) + unit
    hours, rest = divmod(u, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = _fraction(rest, 10**9) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _fraction(value: int, scale: int) -> str:
    """``value / scale`` in decimal without trailing zeros (Go's ``fmtFrac`` and ``fmtInt``)."""
    whole, frac = divmod(value, scale)
    digits = str(frac).rjust(len(str(scale)) - 1, "0").rstrip("0") if scale > 1 else ""
    return f"{whole}.{digits}" if digits else str(whole)


def duration_seconds(text: str) -> float | None:
    """``parse_duration`` in seconds, or ``None`` when ``text`` is not a Go duration."""
    try:
        return parse_duration(text) / 1e9
    except DurationError:
        return None


def get_timestamp(value: str, now: float | None = None) -> float:
    """Docker's ``GetTimestamp`` as epoch seconds: a Go duration back from ``now`` (whole seconds, as
    Go's ``Unix()``), a Unix time (``0``, ``1700000000``, ``1700000000.5``: ``0`` is never a duration)
    or an RFC 3339 date/time (local time when it has no zone)."""
    seconds = duration_seconds(value) if value != "0" else None
    if seconds is not None:
        return float(int((time.time() if now is None else now) - seconds))
    import re
    from datetime import datetime  # here: a listing command reads times with _utc_seconds

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
        plain = _utc_seconds(main[:19]) if tz == "+00:00" else None
        if plain is not None:
            return plain + frac
        from datetime import datetime

        return datetime.fromisoformat(main[:19] + tz).timestamp() + frac
    except ValueError:
        return 0.0


_DAYS_BEFORE_MONTH = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _utc_seconds(text: str) -> float | None:
    """``datetime.fromisoformat(text + "+00:00").timestamp()`` for a valid ``YYYY-MM-DDTHH:MM:SS`` (any
    one character between date and time, as fromisoformat takes), without importing datetime; None for
    any other text (the caller asks datetime, which gives its answer or its error)."""
    if len(text) != 19 or text[4] + text[7] + text[13] + text[16] != "--::":
        return None
    fields = (text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19])
    if not all(f.isascii() and f.isdigit() for f in fields):
        return None
    year, month, day, hour, minute, second = (int(f) for f in fields)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not (year >= 1 and 1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        return None
    if not 1 <= day <= _DAYS_IN_MONTH[month] + (month == 2 and leap):
        return None
    y = year - 1
    ordinal = y * 365 + y // 4 - y // 100 + y // 400 + _DAYS_BEFORE_MONTH[month] + (month > 2 and leap) + day
    return float((ordinal - 719163) * 86400 + hour * 3600 + minute * 60 + second)  # 719163: 1970-01-01
