"""Repository names, tags and references as the distribution spec defines them."""

from __future__ import annotations

import re

__all__ = ["MAX_NAME_LENGTH", "is_valid_name", "is_valid_tag"]

MAX_NAME_LENGTH = 255
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def is_valid_name(name: str) -> bool:
    """True for a repository name the spec allows (lower-case path components, no traversal)."""
    return len(name) <= MAX_NAME_LENGTH and bool(_NAME_RE.match(name))


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.match(tag))
