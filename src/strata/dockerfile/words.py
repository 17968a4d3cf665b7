"""How each instruction's text becomes arguments: Docker's parseWords, name=value pairs, JSON arrays
and leading ``--flag=value`` words."""

from __future__ import annotations

import re

from strata.dockerfile.errors import DockerfileError
from strata.jsonfast import raw_decode  # json's reading without importing json (a cached build's start-up)

__all__ = ["NOT_STRINGS", "json_array", "name_values", "parse_words", "split_flags"]

NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


def _take_escaped(rest: str, i: int, word: str) -> tuple[str, int, str]:
    """The escape character and the one it escapes are both kept in the word."""
    word += rest[i]
    return word, i + 1, rest[i + 1]


def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """The parser's parseWords: split on blanks, quotes and escapes kept inside words."""
    words: list[str] = []
    word, quote, blank_ok, in_word, i = "", "", False, False, 0
    while i < len(rest):
        ch = rest[i]
        if not in_word:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == len(rest):
                    i += 1
                    continue
                word, i, ch = _take_escaped(rest, i, word)
            word += ch
        elif ch.isspace():
            if blank_ok or word:
                words.append(word)
            word, blank_ok, in_word = "", False, False
        else:
            if ch in "'\"":
                quote, blank_ok = ch, True
            if ch == escape:
                if i + 1 == len(rest):
                    i += 1
                    continue
                word, i, ch = _take_escaped(rest, i, word)
            word += ch
        i += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words


def name_values(rest: str, what: str, escape: str = "\\") -> list[str]:
    """``KEY name value`` (old form) or ``KEY a=b c=d`` as flat key, value, key, value…"""
    words = parse_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = re.split(r"\s+", rest.strip(), maxsplit=1)
        if len(parts) < 2:
            raise DockerfileError(f"{what} must have two arguments")
        return parts
    out: list[str] = []
    for w in words:
        if "=" not in w:
            raise DockerfileError(f'Syntax error - can\'t find = in "{w}". Must be of the form: name=value')
        out.extend(w.split("=", 1))
    return out


def json_array(rest: str) -> list[str] | None:
    """A JSON string array (Go's decoder reads the first value only), or None when not JSON."""
    text = rest.lstrip()
    if not text.startswith("["):
        return None
    try:
        value, _ = raw_decode(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise DockerfileError(NOT_STRINGS)
    return value


def split_flags(rest: str) -> tuple[list[tuple[str, str | None]], str]:
    """Leading ``--name=value`` / ``--name`` words (in order, repeats kept) and the text after them; a
    bare ``--`` ends them (dropped, as the parser's extractBuilderFlags)."""
    flags: list[tuple[str, str | None]] = []
    while True:
        m = re.match(r"\s*--([^\s=]*)(=(\S*))?(?=\s|$)", rest)
        if not m:
            return flags, rest.strip()
        if not m.group(1) and not m.group(2):
            return flags, rest[m.end() :].strip()
        flags.append((m.group(1), m.group(3) if m.group(2) else None))
        rest = rest[m.end() :]
