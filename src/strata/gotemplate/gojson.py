"""Go's ``encoding/json`` output for the ``json`` template function: Docker's function encodes with
``SetEscapeHTML(false)``, but a list command's row (a :class:`Struct`, Docker's formatter context)
marshals itself with ``json.Marshal``, which escapes ``<``, ``>`` and ``&`` as ``\u003c`` …."""

from __future__ import annotations

import math
import re
from typing import Any

from strata.gotemplate.values import (
    MISSING,
    GoMap,
    Nil,
    Pointer,
    Printed,
    Struct,
    e_form,
    f_form,
    go_float,
    shortest,
    struct_fields,
)

__all__ = ["OmitEmpty", "go_json"]


_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _json_string(text: str, html: bool = False) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif code < 0x20 or ch in "\u2028\u2029":
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        elif html and ch in _HTML:
            out.append(_HTML[ch])
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_float(value: float) -> str:
    """encoding/json's float64: 'f' form, 'e' form below 1e-6 or from 1e21 (``e-07`` → ``e-7``)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {go_float(value)}")
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    neg, text, x = shortest(value)
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        out = e_form(neg, text, x)
        return re.sub(r"e-0(\d)$", r"e-\1", out)
    return f_form(neg, text, x)


class OmitEmpty(dict):  # type: ignore[type-arg]
    """A struct's fields as a map, some of them (``omitted``) there only for templates: Go's zero values
    of ``omitempty`` fields its JSON leaves out (``{{.Config.MacAddress}}`` is "", ``{{json .Config}}``
    has no ``MacAddress``)."""

    def __init__(self, fields: dict[str, Any], omitted: frozenset[str]) -> None:
        super().__init__(fields)
        self.omitted = omitted


def _omitted(value: Any) -> bool:
    """A nil pointer field with ``omitempty`` (``Nil("<nil>")``): Go's encoder leaves it out."""
    return isinstance(value, Nil) and value.printed == "<nil>"


def go_json(value: Any, html: bool = False) -> str:
    """Compact JSON as Go's encoder writes it (HTML escaping off, except inside a :class:`Struct`, or
    everywhere with ``html``)."""
    if value is None or value is MISSING or isinstance(value, Nil):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value, html)
    if isinstance(value, bytes | bytearray):
        import base64

        return _json_string(base64.b64encode(bytes(value)).decode())
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v, html) for v in value) + "]"
    if isinstance(value, GoMap) and value.nil:
        return "null"
    if isinstance(value, dict):
        skip = value.omitted if isinstance(value, OmitEmpty) else frozenset()
        return "{" + ",".join(f"{_json_string(str(k), html)}:{go_json(v, html)}" for k, v in value.items()
                              if not _omitted(v) and k not in skip) + "}"
    if isinstance(value, Pointer):
        return go_json(value.target, html)
    if isinstance(value, Struct | Printed) and value.marshal is not None:
        return go_json(value.marshal, html)
    fields = struct_fields(value)
    if fields is not None:
        html = html or isinstance(value, Struct)  # the context's MarshalJSON: json.Marshal escapes HTML
        return "{" + ",".join(f"{_json_string(k, html)}:{go_json(v, html)}" for k, v in fields.items()
                              if not callable(v)) + "}"  # methods with arguments are not marshalled
    return _json_string(str(value), html)
