"""Go's ``text/tabwriter`` as Docker's CLI configures it: ``NewWriter(out, 10, 1, 3, ' ', 0)``."""

from __future__ import annotations

__all__ = ["TABLE_MINWIDTH", "TABLE_PADDING", "TABLE_TABWIDTH", "tabwrite"]

TABLE_MINWIDTH = 10
TABLE_TABWIDTH = 1
TABLE_PADDING = 3


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
