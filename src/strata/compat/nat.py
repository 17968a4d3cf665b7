"""go-connections' ``nat`` package: the port-range grammar ``-p``, ``--expose``, ``EXPOSE`` and
``--change "EXPOSE …"`` share."""

from __future__ import annotations

__all__ = ["parse_port_range"]


def parse_port_range(text: str) -> tuple[int, int]:
    """``nat.ParsePortRange``: ``N`` or ``N-M`` with 0 <= N <= M <= 65535, as (N, M);
    ``ValueError`` otherwise (each caller words the error as Docker does for its flag)."""
    start, dash, end = text.partition("-")
    if not start.isdigit() or (dash and not end.isdigit()):
        raise ValueError(text)
    first, last = int(start), int(end) if dash else int(start)
    if not 0 <= first <= 65535 or not 0 <= last <= 65535 or last < first:
        raise ValueError(text)
    return first, last
