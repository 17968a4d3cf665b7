"""Sizes, times and image history worded as Docker's CLI words them (go-units' rules)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

__all__ = ["ago", "history_rows", "human_size", "rfc3339_epoch"]

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float) -> str:
    """``HumanSizeWithPrecision(size, 3)``: decimal units, ``1.98MB``, ``12B``."""
    value, unit = float(size), 0
    while value >= 1000.0 and unit < len(_UNITS) - 1:
        value /= 1000.0
        unit += 1
    return "%.*g%s" % (3, value, _UNITS[unit])  # noqa: UP031 - Go's %.*g


def _duration(seconds: float) -> str:
    secs = int(seconds)
    if seconds < 1:
        return "Less than a second"
    if secs < 60:
        return "1 second" if secs == 1 else f"{secs} seconds"
    minutes = secs // 60
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    for limit, div, word in ((48, 1, "hours"), (24 * 14, 24, "days"), (24 * 60, 24 * 7, "weeks"),
                             (24 * 730, 24 * 30, "months")):
        if hours < limit:
            return f"{hours // div} {word}"
    return f"{secs // 3600 // 24 // 365} years"


def rfc3339_epoch(text: str) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def ago(when: float | str | None, now: float | None = None) -> str:
    """``2 weeks ago``; ``N/A`` when unknown, as Docker prints a missing time."""
    epoch = rfc3339_epoch(when) if isinstance(when, str) else when
    if not epoch:
        return "N/A"
    return _duration(max(0.0, (now or time.time()) - epoch)) + " ago"


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def history_rows(config: dict[str, Any], config_digest: str, layer_sizes: list[int]) -> list[list[str]]:
    """``IMAGE CREATED CREATED BY SIZE COMMENT`` rows, newest first, as ``history`` prints them
    (sizes are the layers' compressed sizes: the registry does not know the unpacked ones)."""
    entries = [h for h in config.get("history") or [] if isinstance(h, dict)]
    sizes = iter(layer_sizes)
    rows: list[list[str]] = []
    for h in entries:
        size = 0 if h.get("empty_layer") else next(sizes, 0)
        created_by = " ".join(str(h.get("created_by") or "").split())
        rows.append(["<missing>", ago(str(h.get("created") or "")), _ellipsis(created_by, 45), human_size(size),
                     str(h.get("comment") or "")])
    rows.reverse()
    if rows:
        rows[0][0] = config_digest.split(":", 1)[-1][:12] or "<missing>"
    return rows
