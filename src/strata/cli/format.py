"""Docker's human output: sizes, durations, short IDs, ellipsis truncation and tabwriter tables.

Each function reproduces the Go code Docker uses for the same column (``go-units``,
``stringid.TruncateID``, the CLI formatter's ``Ellipsis``, ``text/tabwriter`` configured as
``NewWriter(out, 10, 1, 3, ' ', 0)``), so output matches Docker byte for byte.
"""

from __future__ import annotations

import time
import unicodedata
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
TABLE_MINWIDTH = 10
TABLE_TABWIDTH = 1
TABLE_PADDING = 3

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


def _epoch(value: float | datetime) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


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
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes (wide East Asian characters count 2)."""
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


def tabwrite(
    text: str,
    *,
    minwidth: int = TABLE_MINWIDTH,
    padding: int = TABLE_PADDING,
    padchar: str = " ",
) -> str:
    """Align tab-separated ``text`` as Go's ``text/tabwriter`` does (flags 0).

    Cells are tab-terminated: the text after a line's last tab is not part of any column. A column
    block is a run of consecutive lines that all have a cell in that column; each block's width is
    ``max(minwidth, widest cell + padding)``. Widths count characters (Go counts runes).
    """
    lines = [line.split("\t") for line in text.replace("\f", "\n").split("\n")]
    out: list[str] = []
    _format_block(lines, [], 0, len(lines), out, minwidth, padding, padchar)
    return "".join(out)


def _format_block(
    lines: list[list[str]],
    widths: list[int],
    start: int,
    end: int,
    out: list[str],
    minwidth: int,
    padding: int,
    padchar: str,
) -> None:
    column = len(widths)
    pending = start  # first line not written yet
    i = start
    while i < end:
        if column >= len(lines[i]) - 1:
            i += 1
            continue
        _write_lines(lines, widths, pending, i, out, padchar)
        block_start = i
        width = minwidth
        while i < end and column < len(lines[i]) - 1:
            width = max(width, len(lines[i][column]) + padding)
            i += 1
        _format_block(lines, [*widths, width], block_start, i, out, minwidth, padding, padchar)
        pending = i
    _write_lines(lines, widths, pending, end, out, padchar)


def _write_lines(
    lines: list[list[str]], widths: list[int], start: int, end: int, out: list[str], padchar: str
) -> None:
    last = len(lines) - 1
    for index in range(start, end):
        cells = lines[index]
        for j, cell in enumerate(cells):
            out.append(cell)
            if j < len(widths):
                out.append(padchar * (widths[j] - len(cell)))
        if index != last:
            out.append("\n")


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Docker table: header line then rows, aligned like ``docker images``; every line ends with
    a newline and the last column is not padded."""
    lines = ["\t".join(headers)]
    lines.extend("\t".join(row) for row in rows)
    return tabwrite("\n".join(lines) + "\n")
