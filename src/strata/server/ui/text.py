"""Sizes, times and image history worded as Docker's CLI words them (go-units' rules)."""

from __future__ import annotations

import time
from typing import Any

from strata.compat.gotime import parse_time
from strata.compat.units import human_duration, human_size

# human_size: compat.units' (HumanSizeWithPrecision 3), re-exported for the pages
__all__ = ["ago", "history_rows", "human_size"]


def ago(when: float | str | None, now: float | None = None) -> str:
    """``2 weeks ago``; ``N/A`` when unknown, as Docker prints a missing time."""
    epoch = parse_time(when) if isinstance(when, str) else when
    if not epoch:
        return "N/A"
    return human_duration(max(0.0, (now or time.time()) - epoch)) + " ago"


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
