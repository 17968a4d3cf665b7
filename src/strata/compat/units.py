"""go-units (``github.com/docker/go-units``): human-readable sizes and durations as Docker prints them."""

from __future__ import annotations

__all__ = ["human_duration", "human_size"]

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")

_NS = 1_000_000_000
_MINUTE_NS = 60 * _NS
_HOUR_NS = 60 * _MINUTE_NS

# --- sizes -------------------------------------------------------------------------------------


def human_size(size: float, precision: int = 3) -> str:
    """go-units ``HumanSizeWithPrecision``: decimal units, ``%.<precision>g`` (``1.98MB``, ``12B``).

    Docker's ``images``/``history`` use precision 3; ``units.HumanSize`` (``system df``) uses 4.
    """
    value = float(size)
    unit = 0
    while value >= 1000.0 and unit < len(_DECIMAL_UNITS) - 1:
        value /= 1000.0
        unit += 1
    return "%.*g%s" % (precision, value, _DECIMAL_UNITS[unit])  # noqa: UP031 - Go's %.*g


# --- durations ---------------------------------------------------------------------------------


def _to_ns(seconds: float) -> int:
    return round(seconds * _NS)


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``: ``Less than a second``, ``1 second``, ``About a minute``, …"""
    ns = _to_ns(seconds)
    secs = ns // _NS
    if ns < _NS:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = ns // _MINUTE_NS
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = (ns + _HOUR_NS // 2) // _HOUR_NS  # Duration.Round(time.Hour): halves away from zero
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{ns // _HOUR_NS // 24 // 365} years"
