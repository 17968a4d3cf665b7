"""Docker's ``--filter`` arguments (``opts.FilterOpt`` + ``filters.Args``): ``key=value`` items, values
of one key kept once each (alternatives), unknown keys refused with the daemon's words."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from strata.errors import StrataError, UsageError

__all__ = ["parse_filters"]


def parse_filters(
    items: Iterable[str], allowed: Collection[str], *, command: str | None = None, flag: str = "-f, --filter"
) -> dict[str, list[str]]:
    """``key=value`` items grouped by key, in order, each value once (``label!=x`` is the key
    ``label!``). An item without ``=`` is a usage error (``See 'strata COMMAND --help'.`` when
    ``command`` is given; ``flag`` is the flag's name as cobra shows it); a key not in ``allowed`` is ``Invalid filter 'KEY'`` (exit 1)."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            see = f"\nSee 'strata {command} --help'." if command else ""
            raise UsageError(
                f'invalid argument "{item}" for "{flag}" flag: bad format of filter (expected name=value){see}'
            )
        key = key.strip().lower()
        if key not in allowed:
            raise StrataError(f"Invalid filter '{key}'")
        values = out.setdefault(key, [])
        if value not in values:
            values.append(value)
    return out
