"""JSON as the ``json`` package reads and writes it, through its C accelerator (``_json``), without importing
``json``: the package imports ``re`` and compiles its expressions at import, about a fifth of a listing
command's run, and a listing command only reads configs and records and writes a few strings.

Values are ``json``'s by construction: the same C scanner reads, the same C function quotes strings, and
anything this module does not take the short way (bytes in another encoding, text ``json`` would refuse,
a value of an unusual type) goes to ``json`` itself, which gives its value or raises its error.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # typing's import costs a listing command
if TYPE_CHECKING:
    from typing import Any

__all__ = ["detect_encoding", "dumps", "dumps_indented", "loads", "quote", "raw_decode"]

_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Decoder:
    """What ``_json.make_scanner`` reads of a ``json.JSONDecoder`` (the default one)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = _json.make_scanner(_Decoder())  # type: ignore[arg-type]  # typeshed names the class, not the duck
_WHITESPACE = " \t\n\r"


def _skip(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WHITESPACE:
        i += 1
    return i


def detect_encoding(raw: bytes) -> str:
    """The encoding of a JSON document's bytes (RFC 4627: a BOM, else the pattern of zero bytes at the
    start), as ``json.detect_encoding``."""
    if raw.startswith((b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")):
        return "utf-32"
    if raw.startswith((b"\xfe\xff", b"\xff\xfe")):
        return "utf-16"
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if len(raw) >= 4:
        if not raw[0]:
            return "utf-16-be" if raw[1] else "utf-32-be"
        if not raw[1]:
            return "utf-16-le" if raw[2] or raw[3] else "utf-32-le"
    elif len(raw) == 2:
        if not raw[0]:
            return "utf-16-be"
        if not raw[1]:
            return "utf-16-le"
    return "utf-8"


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``."""
    if isinstance(text, bytes):
        try:
            text = text.decode(detect_encoding(text), "surrogatepass")
        except UnicodeDecodeError:
            return _json_loads(text)
    if not text.startswith("\ufeff"):  # json refuses a BOM in text: its error, below
        try:
            value, end = _scan(text, _skip(text, 0))
            if _skip(text, end) == len(text):
                return value
        except (StopIteration, ValueError, SystemError):  # SystemError: an error raised before json.decoder was loaded
            pass
    return _json_loads(text)


def raw_decode(text: str) -> tuple[Any, int]:
    """``json.JSONDecoder().raw_decode(text)``: the value at the start of ``text`` and where it ends
    (what follows is not read); ``ValueError`` when no value starts there."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, SystemError):  # the scanner raises its errors only once json.decoder is loaded
        import json

        return json.JSONDecoder().raw_decode(text)  # json's error
    return value, end


def _json_loads(text: str | bytes) -> Any:
    import json

    return json.loads(text)


def quote(text: str) -> str:
    """``json.dumps(text, ensure_ascii=False)`` of a string."""
    return str(_json.encode_basestring(text))


class _Unusual(Exception):
    """A value the short way does not write: ``json`` writes it (or raises its error)."""


def _refuse(value: Any) -> Any:
    raise _Unusual


def dumps(value: Any, *, sort_keys: bool = False, separators: tuple[str, str] = (", ", ": ")) -> str:
    """``json.dumps(value, sort_keys=sort_keys, separators=separators)`` (ASCII, one line) with the C
    encoder ``json.dumps`` uses; a value of another type goes to ``json`` (its ``default``'s TypeError)."""
    item_separator, key_separator = separators
    encode = _json.make_encoder({}, _refuse, _json.encode_basestring_ascii, None, key_separator, item_separator,
                                sort_keys, False, True)  # fmt: skip
    try:
        return "".join(encode(value, 0))
    except _Unusual:
        import json

        return json.dumps(value, sort_keys=sort_keys, separators=separators)


def dumps_indented(value: Any) -> str:
    """``json.dumps(value, indent=4, ensure_ascii=False)``."""
    out: list[str] = []
    try:
        _write(value, out, "\n")
    except (_Unusual, RecursionError):
        import json

        return json.dumps(value, indent=4, ensure_ascii=False)
    return "".join(out)


def _write(value: Any, out: list[str], newline: str) -> None:
    kind = type(value)
    if kind is str:
        out.append(_json.encode_basestring(value))
    elif value is None or value is True or value is False:
        out.append("null" if value is None else "true" if value else "false")
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is float:
        out.append(_float(value))
    elif kind is dict:
        _write_object(value, out, newline)
    elif kind is list or kind is tuple:
        _write_array(value, out, newline)
    else:
        raise _Unusual


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _write_array(value: list[Any] | tuple[Any, ...], out: list[str], newline: str) -> None:
    if not value:
        out.append("[]")
        return
    inner = newline + "    "
    out.append("[")
    for i, item in enumerate(value):
        out.append("," + inner if i else inner)
        _write(item, out, inner)
    out.append(newline + "]")


def _write_object(value: dict[Any, Any], out: list[str], newline: str) -> None:
    if not value:
        out.append("{}")
        return
    inner = newline + "    "
    out.append("{")
    for i, (key, item) in enumerate(value.items()):
        if type(key) is not str:
            raise _Unusual  # json's own key conversions (numbers, booleans, None) or its TypeError
        out.append(("," + inner if i else inner) + _json.encode_basestring(key) + ": ")
        _write(item, out, inner)
    out.append(newline + "}")
