"""``.dockerignore``: Docker's pattern rules (``*``, ``?``, ``[...]``, ``**`` across directories,
``!`` exceptions, the last matching pattern wins, leading ``/`` and ``..`` cleaned away, a pattern
matching a parent directory excludes what is below it)."""

from __future__ import annotations

import posixpath
import re

__all__ = ["IgnoreRules", "pattern_regex", "read_patterns"]


def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file as Docker's ReadAll cleans them."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        if neg:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:].lstrip("/") or "/"
        out.append(("!" if neg else "") + line)
    return out


def pattern_regex(pattern: str) -> re.Pattern[str]:
    out = "^"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1
                    out += "(.*/)?"
                else:
                    out += ".*"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out += re.escape(ch)
            else:
                body = pattern[i + 1 : end]
                out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
                i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$", re.DOTALL)


class _Pattern:
    __slots__ = ("depth", "exclusion", "regex", "text")

    def __init__(self, text: str, exclusion: bool, regex: re.Pattern[str], depth: int) -> None:
        self.text, self.exclusion, self.regex, self.depth = text, exclusion, regex, depth


class IgnoreRules:
    """Matches context-relative slash paths against the patterns (Docker's PatternMatcher)."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for p in patterns:
            neg = p.startswith("!")
            text = p[1:] if neg else p
            if not text:
                continue
            self.patterns.append(_Pattern(text, neg, pattern_regex(text), len(text.split("/"))))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def ignored(self, path: str) -> bool:
        """Whether Docker's CLI leaves ``path`` out of the context it sends: the patterns exclude it,
        or an excluded directory above it that the CLI does not walk (``may_reinclude_below``)."""
        if self.has_exclusions and "/" in path:
            parts = path.split("/")
            for depth in range(1, len(parts)):
                above = "/".join(parts[:depth])
                if self._matched(above) and not self.may_reinclude_below(above):
                    return True
        return self._matched(path)

    def _matched(self, path: str) -> bool:
        """The patterns' verdict (the last that matches the path or one of its parents wins)."""
        parent_dirs = posixpath.dirname(path).split("/") if "/" in path else []
        matched = False
        for p in self.patterns:
            match = bool(p.regex.match(path))
            if not match and parent_dirs and p.depth <= len(parent_dirs):
                match = bool(p.regex.match("/".join(parent_dirs[: p.depth])))
            if match:
                matched = not p.exclusion
        return matched

    def may_reinclude_below(self, directory: str) -> bool:
        """Whether Docker's CLI walks into an excluded directory: only when a ``!`` pattern's text
        begins with the directory's path (a pattern such as ``!**/*.js`` does not take it in)."""
        if not self.has_exclusions:
            return False
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)
