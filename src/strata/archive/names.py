"""Tar member names: the only shapes strata accepts, and the OCI whiteout naming."""

from __future__ import annotations

from strata.errors import InvalidArchive

__all__ = [
    "OPAQUE_MARKER",
    "WHITEOUT_META_PREFIX",
    "WHITEOUT_PREFIX",
    "join_name",
    "split_member_name",
]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"


def split_member_name(name: str, *, what: str = "member") -> tuple[str, ...]:
    """``"./a//b/"`` -> ``("a", "b")``; the root (``"."``, ``"./"``) -> ``()``.

    Refuses absolute names and any ``..`` component, so a name can never leave the directory it is
    extracted into, whatever symlinks that directory holds (those are refused separately).
    """
    if name.startswith("/"):
        raise InvalidArchive(f"invalid {what} name {name!r}: absolute paths are not allowed in a layer")
    if "\x00" in name:
        raise InvalidArchive(f"invalid {what} name {name!r}: contains NUL")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise InvalidArchive(f"invalid {what} name {name!r}: path escapes the layer with '..'")
    return parts


def join_name(parts: tuple[str, ...]) -> str:
    return "/".join(parts) if parts else "."
