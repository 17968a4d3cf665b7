"""Entry point of the ``strata`` command."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print("strata: not yet", args, file=sys.stderr)
    return 1
