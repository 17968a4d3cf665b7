"""Docker's human output: times ago, container statuses, short IDs, ellipsis truncation and tables.

Each function reproduces the Go code Docker uses for the same column (``stringid.TruncateID``, the
CLI formatter's ``Ellipsis``, ``State.String()``); sizes and durations (go-units) and the tabwriter
come from :mod:`strata.compat` and are re-exported here for the commands' convenience.
"""

from __future__ import annotations

import time

from strata.compat.tabwriter import TABLE_MINWIDTH, TABLE_PADDING, tabwrite
from strata.compat.units import human_duration, human_size

TYPE_CHECKING = False  # typing's import costs a listing command
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

__all__ = [
    "ELLIPSIS",
    "TABLE_MINWIDTH",
    "TABLE_PADDING",
    "container_status",
    "display_width",
    "ellipsis",
    "exited_since",
    "human_duration",
    "human_size",
    "render_table",
    "short_id",
    "tabwrite",
    "time_ago",
    "truncate",
    "up_since",
]

ELLIPSIS = "\u2026"


def _epoch(value: float | datetime) -> float:
    if isinstance(value, (int, float)):  # epoch seconds; else an aware datetime (not imported here)
        return float(value)
    return value.timestamp()


def time_ago(then: float | datetime, now: float | datetime | None = None) -> str:
    """Docker's CREATED column: ``human_duration(now - then) + " ago"`` (times as epoch seconds or
    aware datetimes)."""
    current = time.time() if now is None else _epoch(now)
    return human_duration(current - _epoch(then)) + " ago"


def up_since(seconds: float, *, paused: bool = False, health: str | None = None) -> str:
    """``docker ps`` STATUS of a running container: ``Up 3 seconds``, ``Up 2 hours (Paused)``,
    ``Up 5 minutes (healthy)``."""
    text = f"Up {human_duration(seconds)}"
    if paused:
        return text + " (Paused)"
    if health:
        return f"{text} ({health})"
    return text


def exited_since(exit_code: int, seconds: float) -> str:
    """``docker ps -a`` STATUS of a stopped container: ``Exited (0) 2 minutes ago``."""
    return f"Exited ({exit_code}) {human_duration(seconds)} ago"


def container_status(
    *,
    running: bool,
    started_at: float | None,
    finished_at: float | None,
    exit_code: int = 0,
    paused: bool = False,
    restarting: bool = False,
    dead: bool = False,
    removing: bool = False,
    now: float | None = None,
) -> str:
    """Docker's container ``State.String()`` with times as epoch seconds (``None`` = never)."""
    current = time.time() if now is None else now
    if running:
        if restarting:
            since = current - (finished_at or current)
            return f"Restarting ({exit_code}) {human_duration(since)} ago"
        return up_since(current - (started_at or current), paused=paused)
    if removing:
        return "Removal In Progress"
    if dead:
        return "Dead"
    if started_at is None:
        return "Created"
    if finished_at is None:
        return ""
    return exited_since(exit_code, current - finished_at)


# --- identifiers and truncation ----------------------------------------------------------------


def short_id(id_or_digest: str) -> str:
    """``stringid.TruncateID``: drop any ``algo:`` prefix, keep 12 characters."""
    _, _, hexpart = id_or_digest.rpartition(":")
    return hexpart[:12]


def _rune_width(ch: str) -> int:
    if ch.isascii():
        return 1
    import unicodedata  # here: ASCII text (nearly every table) never needs the Unicode database

    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes (wide East Asian characters count 2)."""
    if text.isascii():
        return len(text)  # every ASCII character takes one column
    return sum(_rune_width(ch) for ch in text)


def ellipsis(text: str, max_width: int) -> str:
    """The CLI formatter's ``Ellipsis``: fit ``text`` in ``max_width`` display columns, ending with
    ``…`` when cut (``history`` CREATED BY and ``search`` DESCRIPTION use 45)."""
    if max_width <= 0:
        return ""
    if max_width == 1:
        return text[:1]
    if text.isascii():
        return text if len(text) <= max_width else text[: max_width - 1] + ELLIPSIS
    if display_width(text) <= max_width:
        return text
    width = 0
    for i, ch in enumerate(text):
        width += _rune_width(ch)
        if width > max_width - 1:
            return text[:i] + ELLIPSIS
    return text


truncate = ellipsis


# --- tables ------------------------------------------------------------------------------------


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Docker table: header line then rows, aligned like ``docker images``; every line ends with
    a newline and the last column is not padded."""
    lines = ["\t".join(headers)]
    lines.extend("\t".join(row) for row in rows)
    return tabwrite("\n".join(lines) + "\n")
