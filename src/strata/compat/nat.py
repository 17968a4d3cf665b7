"""go-connections' ``nat`` package: the port-range grammar ``-p``, ``--expose``, ``EXPOSE`` and
``--change "EXPOSE …"`` share."""

from __future__ import annotations

__all__ = ["go_port_range", "parse_port_range"]


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


def _parse_uint16(text: str) -> int:
    """Go's ``strconv.ParseUint(text, 10, 16)``, its error text in the ValueError."""
    if not text or not all("0" <= ch <= "9" for ch in text):
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    if int(text) > 65535:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return int(text)


def go_port_range(text: str) -> tuple[int, int]:
    """``nat.ParsePortRange`` word for word: its errors (``Empty string specified for ports.``, strconv's,
    ``Invalid range specified for the Port: …``) as the ValueError's text, for the commands that show
    them as they are (``ps --filter publish=``, ``port``)."""
    if not text:
        raise ValueError("Empty string specified for ports.")
    start, dash, end = text.partition("-")
    first = _parse_uint16(start)
    last = _parse_uint16(end.split("-")[0]) if dash else first
    if last < first:
        raise ValueError(f"Invalid range specified for the Port: {text}")
    return first, last
