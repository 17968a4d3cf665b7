"""Go's value model as the templates see Python data: structs, typed nils, truth, ``fmt.Sprint``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from strata.errors import StrataError

__all__ = [
    "INVALID",
    "MISSING",
    "NIL_MAP",
    "NIL_SLICE",
    "Function",
    "GoMap",
    "Nil",
    "Pointer",
    "Printed",
    "Struct",
    "TemplateError",
    "e_form",
    "f_form",
    "go_float",
    "go_sprint",
    "is_true",
    "shortest",
    "sort_key",
    "struct_fields",
    "type_name",
]


class TemplateError(StrataError):
    """A parse or execution error of a template; ``str()`` is Go's message."""


# --- Go value model ----------------------------------------------------------------------------


Function = Callable[..., Any]


class Struct:
    """A Go struct value: named, ordered fields; a missing field is an execution error. Its JSON is a
    context's MarshalJSON (the fields, HTML-escaped), or ``marshal`` when given: what Go's encoder makes
    of a plain struct through its ``json:"..."`` tags (``status`` for the field ``Status``)."""

    __slots__ = ("embedded", "fields", "marshal", "printed", "type_name")

    def __init__(self, type_name: str, fields: Mapping[str, Any] | None = None, *, marshal: Any = None,
                 embedded: tuple[str, ...] = (), printed: str | None = None, **kwargs: Any) -> None:
        self.type_name = type_name
        self.fields: dict[str, Any] = {**(fields or {}), **kwargs}
        self.marshal = marshal
        self.embedded = embedded  # the fields that are embedded structs: theirs are promoted, as Go's
        self.printed = printed  # what its String() method returns, when its type has one

    def field(self, name: str) -> Any:
        """The field ``name``, its own or promoted from an embedded struct; MISSING when neither."""
        if name in self.fields:
            return self.fields[name]
        for inner in self.embedded:
            value = self.fields.get(inner)
            if isinstance(value, Pointer):  # an embedded *T (ContainerJSON's *ContainerJSONBase)
                value = value.target
            if isinstance(value, Struct) and (found := value.field(name)) is not MISSING:
                return found
        return MISSING

    def __repr__(self) -> str:
        return f"Struct({self.type_name!r}, {self.fields!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Struct) and other.type_name == self.type_name and other.fields == self.fields

    __hash__ = None  # type: ignore[assignment]


class Nil:
    """A typed nil (nil slice or map): prints ``[]``/``map[]``, JSON ``null``, empty and false."""

    __slots__ = ("printed",)

    def __init__(self, printed: str) -> None:
        self.printed = printed

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<nil {self.printed}>"


class Printed:
    """A Go value whose type has a ``String()`` method (``time.Time``, ``time.Duration``): ``printed``
    is what fmt shows, ``marshal`` what its JSON encodes (Docker's raw JSON value)."""

    __slots__ = ("marshal", "printed")

    def __init__(self, printed: str, marshal: Any) -> None:
        self.printed = printed
        self.marshal = marshal

    def __repr__(self) -> str:
        return f"Printed({self.printed!r})"


class Pointer:
    """A non-nil Go pointer: fmt prints its address inside a composite (``0xc0000a4010``; Go's is a heap
    address no two runs share, this one is stable), templates look through it (``.Field``, and a pointer
    printed on its own prints what it points to); its JSON is its target's."""

    __slots__ = ("address", "target")
    _next = [0xC000010000]

    def __init__(self, target: Any) -> None:
        self.target = target
        self.address = f"{Pointer._next[0]:#x}"
        Pointer._next[0] += 0x40

    def __repr__(self) -> str:
        return f"Pointer({self.target!r})"


class GoMap(dict):  # type: ignore[type-arg]
    """A typed Go map with string keys (``map[string]string``, ``map[string]*T``) of a typed document. As
    Go's templates read one without ``missingkey=error`` (the Docker CLI's first, typed pass), a missing key
    read as a field is the invalid value (``<no value>``, and so is any field read from it), and ``index``
    of a missing key is the element type's ``zero``. ``nil``: a nil map (JSON ``null``)."""

    __slots__ = ("nil", "zero")

    def __init__(self, items: Any = None, *, zero: Any = "", nil: bool = False) -> None:
        super().__init__(items or {})
        self.zero = zero
        self.nil = nil


NIL_SLICE = Nil("[]")
NIL_MAP = Nil("map[]")


class _Missing:
    """A missing map entry (Go's invalid reflect.Value)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
INVALID: Any = _Missing()  # Go's invalid reflect.Value read from a GoMap: fields of it are invalid too


def struct_fields(value: Any) -> dict[str, Any] | None:
    if isinstance(value, Struct):
        return value.fields
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return None


def type_name(value: Any) -> str:
    if isinstance(value, str) and isinstance(named := getattr(value, "go_type", None), str):
        return named  # a named string type (container.NetworkMode)
    if isinstance(value, Struct):
        return value.type_name
    if isinstance(value, Pointer):
        return "*" + type_name(value.target)
    if value is None:
        return "interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple) or value is NIL_SLICE:
        return "[]interface {}"
    if isinstance(value, dict) or value is NIL_MAP:
        return "map[string]interface {}"
    return type(value).__name__


def shortest(value: float) -> tuple[str, str, int]:
    """Sign, shortest round-trip digits and decimal exponent x (value = d.ddd * 10**x)."""
    sign, digits, exp = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    return ("-" if sign else ""), text, len(text) + int(exp) - 1


def e_form(neg: str, text: str, x: int) -> str:
    mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"


def f_form(neg: str, text: str, x: int) -> str:
    point = x + 1
    if point <= 0:
        return f"{neg}0.{'0' * -point}{text}"
    if point >= len(text):
        return neg + text + "0" * (point - len(text))
    return f"{neg}{text[:point]}.{text[point:]}"


def go_float(value: float) -> str:
    """fmt's %v of a float64: strconv 'g' with the shortest digits (exponent when x < -4 or x >= 6)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    neg, text, x = shortest(value)
    return e_form(neg, text, x) if x < -4 or x >= 6 else f_form(neg, text, x)


def go_sprint(value: Any, *, top: bool = True) -> str:
    """How Go's fmt prints ``value`` with %v (``top``: a nil prints ``<no value>`` as templates do)."""
    if value is None or value is MISSING or value is INVALID:
        return "<no value>" if top else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Nil | Printed):
        return value.printed
    if isinstance(value, Pointer):
        target = value.target
        if top or (isinstance(target, Struct) and target.printed is not None):  # String() on the pointer
            return go_sprint(target, top=True)
        return value.address
    if isinstance(value, bytes | bytearray):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_sprint(v, top=False) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: sort_key(kv[0]))
        return (
            "map[" + " ".join(f"{go_sprint(k, top=False)}:{go_sprint(v, top=False)}" for k, v in items) + "]"
        )
    if isinstance(value, Struct) and value.printed is not None:
        return value.printed
    fields = struct_fields(value)
    if fields is not None:
        return "{" + " ".join(go_sprint(v, top=False) for v in fields.values()) + "}"
    return str(value)


def sort_key(key: Any) -> tuple[int, Any]:
    if isinstance(key, bool | int | float):
        return (0, key)
    return (1, str(key))




def is_true(value: Any) -> bool:
    if value is None or value is MISSING or value is INVALID:
        return False
    if isinstance(value, bool | int | float):
        return bool(value)
    if isinstance(value, str | bytes | list | tuple | dict | Nil):
        return len(value) > 0
    return True
