"""The template functions: Go's builtins (``funcs.go``) and Docker's (``templates.basicFunctions``)."""

from __future__ import annotations

import html as _html
import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

from strata.gotemplate.gojson import go_json
from strata.gotemplate.quote import go_quote
from strata.gotemplate.values import (
    MISSING,
    NIL_MAP,
    NIL_SLICE,
    Function,
    GoMap,
    Nil,
    go_float,
    go_sprint,
    is_true,
    sort_key,
    type_name,
)

__all__ = ["BASIC_FUNCTIONS", "HEADER_FUNCTIONS", "SIGNATURES", "ArgError", "CallError", "fn_and", "fn_or"]


class ArgError(Exception):
    """Wrong argument type (reported without the "error calling" prefix, as Go)."""


class CallError(Exception):
    """The function itself failed ("error calling NAME: ...")."""


def _want_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ArgError(f"wrong type for value; expected string; got {type_name(value)}")


def _want_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ArgError(f"wrong type for value; expected int; got {type_name(value)}")


def _want_strings(value: Any) -> list[str]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    if value is NIL_SLICE or value is None:
        return []
    raise ArgError(f"wrong type for value; expected []string; got {type_name(value)}")


def _fn_json(value: Any) -> str:
    try:
        return go_json(value)
    except ValueError:
        return ""  # Docker ignores the encoder's error and prints what was written: nothing


def _fn_split(text: Any, sep: Any) -> list[str]:
    s, d = _want_str(text), _want_str(sep)
    if d == "":
        return list(s)
    return s.split(d)


def _fn_join(items: Any, sep: Any) -> str:
    return _want_str(sep).join(_want_strings(items))


def _fn_title(text: Any) -> str:
    s = _want_str(text)
    out: list[str] = []
    prev_sep = True
    for ch in s:
        out.append(ch.title() if prev_sep else ch)
        prev_sep = not (ch.isalnum() or ch == "_") if ch.isascii() else ch.isspace()
    return "".join(out)


def _fn_lower(text: Any) -> str:
    return _want_str(text).lower()


def _fn_upper(text: Any) -> str:
    return _want_str(text).upper()


def _fn_pad(text: Any, prefix: Any, suffix: Any) -> str:
    s = _want_str(text)
    if s == "":
        return s
    return " " * max(_want_int(prefix), 0) + s + " " * max(_want_int(suffix), 0)


def _fn_truncate(text: Any, length: Any) -> str:
    s, n = _want_str(text), _want_int(length)
    raw = s.encode()
    if len(raw) < n:
        return s
    if n < 0:
        raise CallError(f"slice bounds out of range [:{n}]")
    return raw[:n].decode(errors="ignore")


def _fn_len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list | tuple | dict | bytes | bytearray | Nil):
        return len(value)
    raise CallError(f"len of type {type_name(value)}")


def _fn_index(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise CallError("index of untyped nil")
    for idx in indexes:
        if item is NIL_MAP:
            item = None
        elif isinstance(item, GoMap):
            item = item.get(idx, item.zero)
        elif isinstance(item, dict):
            item = item.get(idx)
        elif isinstance(item, list | tuple | str | bytes | Nil):
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise CallError(f"cannot index slice/array with type {type_name(idx)}")
            seq: Any = item.encode() if isinstance(item, str) else item
            if idx < 0 or idx >= len(seq):
                raise CallError(f"index out of range: {idx}")
            item = seq[idx]
        elif item is None:
            raise CallError("index of untyped nil")
        else:
            raise CallError(f"can't index item of type {type_name(item)}")
    return item


def _fn_slice(item: Any, *indexes: Any) -> Any:
    if not isinstance(item, list | tuple | str):
        raise CallError(f"can't slice item of type {type_name(item)}")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    bounds = [_want_int(i) for i in indexes]
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise CallError(f"index out of range: {end if end > len(item) else start}")
    return item[start:end]


def _fn_not(value: Any) -> bool:
    return not is_true(value)


def fn_and(*values: Any) -> Any:  # evaluated lazily by _eval_logic
    raise AssertionError


def fn_or(*values: Any) -> Any:  # evaluated lazily by _eval_logic
    raise AssertionError


def _sprint(values: Sequence[Any]) -> str:
    out: list[str] = []
    for i, v in enumerate(values):
        if i > 0 and not isinstance(v, str) and not isinstance(values[i - 1], str):
            out.append(" ")
        out.append(go_sprint(v, top=False))
    return "".join(out)


def _fn_print(*values: Any) -> str:
    return _sprint(values)


def _fn_println(*values: Any) -> str:
    return " ".join(go_sprint(v, top=False) for v in values) + "\n"


_VERB_RE = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?(.)", re.S)


def _fn_printf(fmt: Any, *values: Any) -> str:
    text = _want_str(fmt)
    args = list(values)
    used = 0
    out: list[str] = []
    pos = 0
    while True:
        i = text.find("%", pos)
        if i < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:i])
        m = _VERB_RE.match(text, i)
        if m is None:
            out.append("%!(NOVERB)")
            break
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[used]
        used += 1
        out.append(_format_verb(arg, verb, flags, width, prec))
    if used < len(args):
        extra = ", ".join(f"{type_name(a)}={go_sprint(a, top=False)}" for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _format_s(arg: Any) -> str:
    """%s: strings as is, composites element by element, anything else a bad-verb marker."""
    if isinstance(arg, str):
        return arg
    if isinstance(arg, bytes | bytearray):
        return bytes(arg).decode(errors="replace")
    if isinstance(arg, list | tuple):
        return "[" + " ".join(_format_s(v) for v in arg) + "]"
    if isinstance(arg, dict):
        items = sorted(arg.items(), key=lambda kv: sort_key(kv[0]))
        return "map[" + " ".join(f"{_format_s(k)}:{_format_s(v)}" for k, v in items) + "]"
    if arg is None:
        return "%!s(<nil>)"
    return f"%!s({type_name(arg)}={go_sprint(arg, top=False)})"


def _format_verb(arg: Any, verb: str, flags: str, width: str | None, prec: str | None) -> str:
    if verb == "v":
        body = go_sprint(arg, top=False)
    elif verb == "s":
        body = _format_s(arg)
        if prec is not None:
            body = body[: int(prec)]
    elif verb == "q" and isinstance(arg, str):
        body = go_quote(arg)
    elif verb == "d" and isinstance(arg, int) and not isinstance(arg, bool):
        body = str(arg)
        if "+" in flags and arg >= 0:
            body = "+" + body
    elif verb == "t" and isinstance(arg, bool):
        body = "true" if arg else "false"
    elif verb in "xX" and isinstance(arg, int | str) and not isinstance(arg, bool):
        body = format(arg, "x") if isinstance(arg, int) else arg.encode().hex()
        body = body.upper() if verb == "X" else body
    elif verb in "feEgG" and isinstance(arg, float | int) and not isinstance(arg, bool):
        spec = f".{prec}{verb}" if prec is not None else ("" if verb in "gG" else ".6") + verb
        body = format(float(arg), spec) if prec is not None or verb not in "gG" else go_float(float(arg))
    elif verb == "c" and isinstance(arg, int) and not isinstance(arg, bool):
        body = chr(arg)
    elif verb == "T":
        body = type_name(arg)
    else:
        return f"%!{verb}({type_name(arg)}={go_sprint(arg, top=False)})"
    if width is not None and width != "*":
        size = int(width)
        if "-" in flags:
            body = body.ljust(size)
        elif "0" in flags and verb in "dxXfeEgG":
            sign = body[0] if body[:1] in "+-" else ""
            body = sign + body[len(sign) :].rjust(size - len(sign), "0")
        else:
            body = body.rjust(size)
    return body


def _comparable(a: Any, b: Any) -> bool:
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numeric) and isinstance(b, numeric):
        return isinstance(a, int) == isinstance(b, int)
    if isinstance(a, str) and isinstance(b, str):  # Go's basicKind: a named string type (NetworkMode) too
        return True
    return type(a) is type(b)


def _basic(value: Any) -> bool:
    return isinstance(value, bool | int | float | str)


def _fn_eq(first: Any, *others: Any) -> bool:
    if not others:
        raise CallError("missing argument for comparison")
    for other in others:
        if first is None or other is None or first is MISSING or other is MISSING:
            if (first in (None, MISSING)) and (other in (None, MISSING)):
                return True
            continue
        if not _basic(first) or not _basic(other):
            raise CallError("non-comparable type")
        if not _comparable(first, other):
            raise CallError("incompatible types for comparison")
        if first == other:
            return True
    return False


def _fn_ne(a: Any, b: Any) -> bool:
    return not _fn_eq(a, b)


def _ordered(a: Any, b: Any) -> None:
    if not _basic(a) or not _basic(b) or isinstance(a, bool) or isinstance(b, bool):
        raise CallError("invalid type for comparison")
    if not _comparable(a, b):
        raise CallError("incompatible types for comparison")


def _fn_lt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a < b)


def _fn_le(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a <= b)


def _fn_gt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a > b)


def _fn_ge(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a >= b)


def _fn_html(*values: Any) -> str:
    return _html.escape(_sprint(values), quote=True).replace("&#x27;", "&#39;").replace("&quot;", "&#34;")


def _fn_js(*values: Any) -> str:
    out = []
    for ch in _sprint(values):
        if ch in "\\'\"<>&=":
            out.append(f"\\u{ord(ch):04X}" if ch in "<>&=" else "\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _fn_urlquery(*values: Any) -> str:
    return urllib.parse.quote_plus(_sprint(values), safe="")


def _fn_call(fn: Any, *args: Any) -> Any:
    if not callable(fn):
        raise CallError(f"non-function {go_sprint(fn, top=False)} of type {type_name(fn)}")
    return fn(*args)


BASIC_FUNCTIONS: dict[str, Function] = {
    # Go's builtins
    "and": fn_and,
    "or": fn_or,
    "not": _fn_not,
    "len": _fn_len,
    "index": _fn_index,
    "slice": _fn_slice,
    "print": _fn_print,
    "printf": _fn_printf,
    "println": _fn_println,
    "eq": _fn_eq,
    "ne": _fn_ne,
    "lt": _fn_lt,
    "le": _fn_le,
    "gt": _fn_gt,
    "ge": _fn_ge,
    "html": _fn_html,
    "js": _fn_js,
    "urlquery": _fn_urlquery,
    "call": _fn_call,
    # Docker's additions (docker/cli templates.basicFunctions)
    "json": _fn_json,
    "split": _fn_split,
    "join": _fn_join,
    "title": _fn_title,
    "lower": _fn_lower,
    "upper": _fn_upper,
    "pad": _fn_pad,
    "truncate": _fn_truncate,
}


# Parameter kinds of the builtins ("any", "string", "int", "[]string"): fixed ones, then the
# variadic kind (None: not variadic). Used to check arguments as Go's reflection-based calls do.
SIGNATURES: dict[Function, tuple[tuple[str, ...], str | None]] = {
    _fn_json: (("any",), None),
    _fn_split: (("string", "string"), None),
    _fn_join: (("[]string", "string"), None),
    _fn_title: (("string",), None),
    _fn_lower: (("string",), None),
    _fn_upper: (("string",), None),
    _fn_pad: (("string", "int", "int"), None),
    _fn_truncate: (("string", "int"), None),
    _fn_len: (("any",), None),
    _fn_index: (("any",), "any"),
    _fn_slice: (("any",), "any"),
    _fn_not: (("any",), None),
    _fn_print: ((), "any"),
    _fn_println: ((), "any"),
    _fn_printf: (("string",), "any"),
    _fn_eq: (("any",), "any"),
    _fn_ne: (("any", "any"), None),
    _fn_lt: (("any", "any"), None),
    _fn_le: (("any", "any"), None),
    _fn_gt: (("any", "any"), None),
    _fn_ge: (("any", "any"), None),
    _fn_html: ((), "any"),
    _fn_js: ((), "any"),
    _fn_urlquery: ((), "any"),
    _fn_call: (("any",), "any"),
}


def _header_one(value: Any) -> Any:
    return value


def _header_two(value: Any, _: Any) -> Any:
    return value


def _header_truncate(value: Any, _: Any) -> Any:
    return value


# docker/cli templates.HeaderFunctions: the table header keeps the column names intact. They take a
# string, so a field missing from the header map stops the header there, as in Docker.
HEADER_FUNCTIONS: dict[str, Function] = {
    "json": _header_one,
    "title": _header_one,
    "lower": _header_one,
    "upper": _header_one,
    "split": _header_two,
    "join": _header_two,
    "truncate": _header_truncate,
}
SIGNATURES[_header_one] = (("string",), None)
SIGNATURES[_header_two] = (("string", "string"), None)
SIGNATURES[_header_truncate] = (("string", "int"), None)
