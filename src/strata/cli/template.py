"""The Go ``text/template`` language as Docker's ``--format`` uses it.

Supported: text and actions with ``{{-``/``-}}`` trimming and ``{{/* comments */}}``; fields and chains
(``.Config.Cmd``, ``$v.Name``, ``(index .RepoTags 0).X``); pipelines ``a | b``; variables
(``$x := …``, ``$x = …``, ``$``); ``if``/``else if``/``else``, ``range`` (with ``$i, $e :=``,
``else``, ``break``, ``continue``), ``with``/``else with``; string, raw string, number, char, bool
and nil constants; Go's builtins (``and or not len index slice print printf println eq ne lt le gt
ge html js urlquery call``) and Docker's (``json join split lower upper title pad truncate``).

Values are Python data seen as Go values: ``dict`` is a Go map (printed ``map[k:v]`` with sorted
keys; JSON keeps insertion order, so build struct-like dicts in Docker's field order), ``list``/
``tuple`` a slice (``[a b]``), ``None`` a nil interface (``<no value>`` when printed on its own,
``<nil>`` inside a composite), :class:`Struct` and dataclasses Go structs (``{a b}``; an unknown
field is an error, as for Docker's typed contexts), other objects expose attributes and zero-argument
methods as fields.

Errors carry Go's messages (``template: :1: unclosed action``); :class:`Format` (list commands) and
:class:`InspectFormat` (``inspect``) wrap them the way the Docker CLI does.
"""

from __future__ import annotations

import dataclasses
import html as _html
import math
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

from strata.cli.format import tabwrite
from strata.errors import StrataError

__all__ = [
    "BASIC_FUNCTIONS",
    "HEADER_FUNCTIONS",
    "NIL_MAP",
    "NIL_SLICE",
    "Format",
    "InspectFormat",
    "Struct",
    "Template",
    "TemplateError",
    "go_json",
    "go_sprint",
    "parse",
]


class TemplateError(StrataError):
    """A parse or execution error of a template; ``str()`` is Go's message."""


# --- Go value model ----------------------------------------------------------------------------


class Struct:
    """A Go struct value: named, ordered fields; a missing field is an execution error."""

    __slots__ = ("fields", "type_name")

    def __init__(self, type_name: str, fields: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.type_name = type_name
        self.fields: dict[str, Any] = {**(fields or {}), **kwargs}

    def __repr__(self) -> str:
        return f"Struct({self.type_name!r}, {self.fields!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Struct) and other.type_name == self.type_name and other.fields == self.fields

    __hash__ = None  # type: ignore[assignment]


class _Nil:
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


NIL_SLICE = _Nil("[]")
NIL_MAP = _Nil("map[]")


class _Missing:
    """A missing map entry (Go's invalid reflect.Value)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _struct_fields(value: Any) -> dict[str, Any] | None:
    if isinstance(value, Struct):
        return value.fields
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return None


def _type_name(value: Any) -> str:
    if isinstance(value, Struct):
        return value.type_name
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


def _shortest(value: float) -> tuple[str, str, int]:
    """Sign, shortest round-trip digits and decimal exponent x (value = d.ddd * 10**x)."""
    sign, digits, exp = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    return ("-" if sign else ""), text, len(text) + int(exp) - 1


def _e_form(neg: str, text: str, x: int) -> str:
    mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"


def _f_form(neg: str, text: str, x: int) -> str:
    point = x + 1
    if point <= 0:
        return f"{neg}0.{'0' * -point}{text}"
    if point >= len(text):
        return neg + text + "0" * (point - len(text))
    return f"{neg}{text[:point]}.{text[point:]}"


def _go_float(value: float) -> str:
    """fmt's %v of a float64: strconv 'g' with the shortest digits (exponent when x < -4 or x >= 6)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    neg, text, x = _shortest(value)
    return _e_form(neg, text, x) if x < -4 or x >= 6 else _f_form(neg, text, x)


def go_sprint(value: Any, *, top: bool = True) -> str:
    """How Go's fmt prints ``value`` with %v (``top``: a nil prints ``<no value>`` as templates do)."""
    if value is None or value is _MISSING:
        return "<no value>" if top else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, _Nil):
        return value.printed
    if isinstance(value, bytes | bytearray):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_sprint(v, top=False) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: _sort_key(kv[0]))
        return (
            "map[" + " ".join(f"{go_sprint(k, top=False)}:{go_sprint(v, top=False)}" for k, v in items) + "]"
        )
    fields = _struct_fields(value)
    if fields is not None:
        return "{" + " ".join(go_sprint(v, top=False) for v in fields.values()) + "}"
    return str(value)


def _sort_key(key: Any) -> tuple[int, Any]:
    if isinstance(key, bool | int | float):
        return (0, key)
    return (1, str(key))


# --- JSON as Go's encoding/json (SetEscapeHTML(false)) -------------------------------------------


def _json_string(text: str) -> str:
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
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_float(value: float) -> str:
    """encoding/json's float64: 'f' form, 'e' form below 1e-6 or from 1e21 (``e-07`` → ``e-7``)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {_go_float(value)}")
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    neg, text, x = _shortest(value)
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        out = _e_form(neg, text, x)
        return re.sub(r"e-0(\d)$", r"e-\1", out)
    return _f_form(neg, text, x)


def go_json(value: Any) -> str:
    """Compact JSON as Go's encoder writes it (HTML escaping off)."""
    if value is None or value is _MISSING or isinstance(value, _Nil):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, bytes | bytearray):
        import base64

        return _json_string(base64.b64encode(bytes(value)).decode())
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json_string(str(k))}:{go_json(v)}" for k, v in value.items()) + "}"
    fields = _struct_fields(value)
    if fields is not None:
        return "{" + ",".join(f"{_json_string(k)}:{go_json(v)}" for k, v in fields.items()) + "}"
    return _json_string(str(value))


# --- lexer -------------------------------------------------------------------------------------

_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with"}
_SPACE = " \t\r\n"
_NUMBER_RE = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]*)?"
    r"|0[bB][01_]*|0[oO][0-7_]*|[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]*)?)i?"
)


@dataclass
class _Tok:
    kind: str  # TEXT LEFT RIGHT SPACE FIELD DOT VAR IDENT KEYWORD BOOL NIL NUMBER STRING RAW CHAR
    #            CHARCONST PIPE ASSIGN DECLARE LPAREN RPAREN EOF ERROR
    val: str
    pos: int
    line: int


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[_Tok] = []
        self.paren = 0

    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def emit(self, kind: str, val: str, pos: int) -> None:
        self.tokens.append(_Tok(kind, val, pos, self.line_at(pos)))

    def error(self, message: str) -> list[_Tok]:
        self.emit("ERROR", message, self.pos)
        return self.tokens

    def run(self) -> list[_Tok]:
        text = self.text
        while True:
            start = self.pos
            i = text.find("{{", start)
            if i < 0:
                if start < len(text):
                    self.emit("TEXT", text[start:], start)
                self.emit("EOF", "", len(text))
                return self.tokens
            trim_left = text.startswith("-", i + 2) and i + 3 < len(text) and text[i + 3] in _SPACE
            chunk = text[start:i]
            if trim_left:
                chunk = chunk.rstrip(_SPACE)
            if chunk:
                self.emit("TEXT", chunk, start)
            self.pos = i + 2 + (2 if trim_left else 0)
            if text.startswith("/*", self.pos):
                if not self.comment():
                    return self.tokens
                continue
            self.emit("LEFT", "{{", i)
            if not self.inside_action():
                return self.tokens

    def trim_right(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
            self.pos += 1

    def at_right_delim(self) -> tuple[bool, bool]:
        text = self.text
        if text.startswith("}}", self.pos):
            return True, False
        if text.startswith(" -}}", self.pos) or (
            self.pos < len(text) and text[self.pos] in _SPACE and text.startswith("-}}", self.pos + 1)
        ):
            return True, True
        return False, False

    def comment(self) -> bool:
        end = self.text.find("*/", self.pos + 2)
        if end < 0:
            self.error("unclosed comment")
            return False
        self.pos = end + 2
        delim, trim = self.at_right_delim()
        if not delim:
            self.error("comment ends before closing delimiter")
            return False
        self.pos += 4 if trim else 2
        if trim:
            self.trim_right()
        return True

    def inside_action(self) -> bool:
        text = self.text
        while True:
            delim, trim = self.at_right_delim()
            if delim:
                if self.paren > 0:
                    self.error("unclosed left paren")
                    return False
                start = self.pos
                self.pos += 4 if trim else 2
                self.emit("RIGHT", "}}", start)
                if trim:
                    self.trim_right()
                return True
            if self.pos >= len(text):
                self.error("unclosed action")
                return False
            start = self.pos
            ch = text[start]
            if ch in _SPACE:
                while self.pos < len(text) and text[self.pos] in _SPACE:
                    if self.at_right_delim() == (True, True):
                        break
                    self.pos += 1
                if self.pos > start:
                    self.emit("SPACE", text[start : self.pos], start)
                continue
            self.pos += 1
            if ch == "=":
                self.emit("ASSIGN", "=", start)
            elif ch == ":":
                if not text.startswith("=", self.pos):
                    self.error("expected :=")
                    return False
                self.pos += 1
                self.emit("DECLARE", ":=", start)
            elif ch == "|":
                self.emit("PIPE", "|", start)
            elif ch == '"':
                if not self.quote(start):
                    return False
            elif ch == "`":
                end = text.find("`", self.pos)
                if end < 0:
                    self.error("unterminated raw quoted string")
                    return False
                self.pos = end + 1
                self.emit("RAW", text[start : self.pos], start)
            elif ch == "$":
                if not self.field_or_variable("VAR", start):
                    return False
            elif ch == "'":
                if not self.char_constant(start):
                    return False
            elif ch == "." and not (self.pos < len(text) and text[self.pos].isdigit()):
                if not self.field_or_variable("FIELD", start):
                    return False
            elif ch in "+-." or ch.isdigit():
                if not self.number(start):
                    return False
            elif _is_alnum(ch):
                if not self.identifier(start):
                    return False
            elif ch == "(":
                self.paren += 1
                self.emit("LPAREN", "(", start)
            elif ch == ")":
                self.paren -= 1
                if self.paren < 0:
                    self.error("unexpected right paren")
                    return False
                self.emit("RPAREN", ")", start)
            elif ch.isascii() and ch.isprintable():
                self.emit("CHAR", ch, start)
            else:
                self.error(f"unrecognized character in action: {_go_rune(ch)}")
                return False

    def at_terminator(self) -> bool:
        if self.pos >= len(self.text):
            return True
        ch = self.text[self.pos]
        return ch in _SPACE or ch in ".,|:()" or self.text.startswith("}}", self.pos)

    def field_or_variable(self, kind: str, start: int) -> bool:
        if self.at_terminator():
            self.emit("DOT" if kind == "FIELD" else "VAR", self.text[start : self.pos], start)
            return True
        while self.pos < len(self.text) and _is_alnum(self.text[self.pos]):
            self.pos += 1
        if not self.at_terminator():
            self.error(f"bad character {_go_rune(self.text[self.pos])}")
            return False
        self.emit(kind, self.text[start : self.pos], start)
        return True

    def identifier(self, start: int) -> bool:
        while self.pos < len(self.text) and _is_alnum(self.text[self.pos]):
            self.pos += 1
        if not self.at_terminator():
            self.error(f"bad character {_go_rune(self.text[self.pos])}")
            return False
        word = self.text[start : self.pos]
        if word in ("true", "false"):
            self.emit("BOOL", word, start)
        elif word == "nil":
            self.emit("NIL", word, start)
        elif word in _KEYWORDS:
            self.emit("KEYWORD", word, start)
        else:
            self.emit("IDENT", word, start)
        return True

    def number(self, start: int) -> bool:
        m = _NUMBER_RE.match(self.text, start)
        end = m.end() if m else start + 1
        self.pos = max(end, start + 1)
        if self.pos < len(self.text) and _is_alnum(self.text[self.pos]):
            self.pos += 1
            self.error(f"bad number syntax: {_go_quote(self.text[start : self.pos])}")
            return False
        self.emit("NUMBER", self.text[start : self.pos], start)
        return True

    def quote(self, start: int) -> bool:
        text = self.text
        while True:
            if self.pos >= len(text) or text[self.pos] == "\n":
                self.error("unterminated quoted string")
                return False
            ch = text[self.pos]
            self.pos += 1
            if ch == "\\" and self.pos < len(text) and text[self.pos] != "\n":
                self.pos += 1
            elif ch == '"':
                break
        self.emit("STRING", text[start : self.pos], start)
        return True

    def char_constant(self, start: int) -> bool:
        text = self.text
        while True:
            if self.pos >= len(text) or text[self.pos] == "\n":
                self.error("unterminated character constant")
                return False
            ch = text[self.pos]
            self.pos += 1
            if ch == "\\" and self.pos < len(text) and text[self.pos] != "\n":
                self.pos += 1
            elif ch == "'":
                break
        self.emit("CHARCONST", text[start : self.pos], start)
        return True


def _go_rune(ch: str) -> str:
    return f"U+{ord(ch):04X} {_go_char_quote(ch)}"


def _go_char_quote(ch: str) -> str:
    if ch == "'":
        return "'\\''"
    if ch.isprintable():
        return f"'{ch}'"
    return "'" + _go_quote(ch)[1:-1] + "'"


def _go_quote(text: str) -> str:
    from strata.reference import go_quote

    return go_quote(text)


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unquote(token: str) -> str:
    """strconv.Unquote for a double-quoted or single-quoted Go literal (raises ValueError)."""
    quote, body = token[0], token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            if ch == quote:
                raise ValueError("invalid syntax")
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("invalid syntax")
        esc = body[i]
        i += 1
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
        elif esc == quote:
            out.append(quote)
        elif esc in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i : i + size]
            if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 16)))
            i += size
        elif esc in "01234567":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 2
        else:
            raise ValueError("invalid syntax")
    return "".join(out)


# --- AST ---------------------------------------------------------------------------------------


@dataclass
class _Node:
    pos: int


@dataclass
class _Text(_Node):
    text: str


@dataclass
class _FieldNode(_Node):
    idents: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass
class _VarNode(_Node):
    idents: list[str]  # first is the variable name ("$x")

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass
class _DotNode(_Node):
    def __str__(self) -> str:
        return "."


@dataclass
class _NilNode(_Node):
    def __str__(self) -> str:
        return "nil"


@dataclass
class _ConstNode(_Node):
    value: Any
    text: str
    kind: str = "number"  # bool / number / string

    def __str__(self) -> str:
        return self.text


@dataclass
class _IdentNode(_Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class _CommandNode(_Node):
    args: list[_Node]

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, _PipeNode) else str(a) for a in self.args)


@dataclass
class _PipeNode(_Node):
    decl: list[str]
    is_assign: bool
    cmds: list[_CommandNode]

    def __str__(self) -> str:
        text = " | ".join(str(c) for c in self.cmds)
        if self.decl:
            text = ", ".join(self.decl) + (" = " if self.is_assign else " := ") + text
        return text


@dataclass
class _ChainNode(_Node):
    node: _Node
    fields: list[str]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, _PipeNode) else str(self.node)
        return inner + "".join("." + f for f in self.fields)


@dataclass
class _ActionNode(_Node):
    pipe: _PipeNode


@dataclass
class _ListNode(_Node):
    nodes: list[_Node] = field(default_factory=list)


@dataclass
class _BranchNode(_Node):
    kind: str  # if / range / with
    pipe: _PipeNode
    body: _ListNode
    else_body: _ListNode | None


@dataclass
class _LoopControl(_Node):
    kind: str  # break / continue


# --- parser ------------------------------------------------------------------------------------

_OPERAND_START = {
    "BOOL",
    "CHARCONST",
    "DOT",
    "FIELD",
    "IDENT",
    "NUMBER",
    "NIL",
    "RAW",
    "STRING",
    "VAR",
    "LPAREN",
}


class _Parser:
    def __init__(self, text: str, funcs: Mapping[str, Any]) -> None:
        self.text = text
        self.tokens = _Lexer(text).run()
        self.i = 0
        self.funcs = funcs
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0

    # token helpers
    def next(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        if tok.kind == "ERROR":
            self.fail(tok.val, tok.line)
        return tok

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> _Tok:
        tok = self.tokens[self.i]
        if tok.kind == "ERROR":
            self.i += 1
            self.fail(tok.val, tok.line)
        return tok

    def next_non_space(self) -> _Tok:
        tok = self.next()
        while tok.kind == "SPACE":
            tok = self.next()
        return tok

    def peek_non_space(self) -> _Tok:
        tok = self.next_non_space()
        self.backup()
        return tok

    def fail(self, message: str, line: int | None = None) -> NoReturn:
        if line is None:
            line = self.tokens[max(self.i - 1, 0)].line
        raise TemplateError(f"template: :{line}: {message}")

    def unexpected(self, tok: _Tok, context: str) -> NoReturn:
        self.fail(f"unexpected {_describe(tok)} in {context}", tok.line)

    # grammar
    def parse(self) -> _ListNode:
        root = _ListNode(0)
        while self.peek().kind != "EOF":
            tok = self.peek()
            if tok.kind == "LEFT":
                self.next()
                kw = self.peek_non_space()
                if kw.kind == "KEYWORD" and kw.val in ("end", "else"):
                    self.fail(f"unexpected {{{{{kw.val}}}}}", kw.line)
                root.nodes.append(self.action())
            else:
                root.nodes.append(self.text_node())
        return root

    def text_node(self) -> _Node:
        tok = self.next()
        return _Text(tok.pos, tok.val)

    def item_list(self) -> tuple[_ListNode, str]:
        """Nodes up to ``{{end}}`` or ``{{else}}``; returns which one ended it."""
        lst = _ListNode(self.peek().pos)
        while True:
            tok = self.peek()
            if tok.kind == "EOF":
                self.fail("unexpected EOF", tok.line)
            if tok.kind == "LEFT":
                self.next()
                kw = self.peek_non_space()
                if kw.kind == "KEYWORD" and kw.val in ("end", "else"):
                    self.next_non_space()
                    return lst, kw.val
                lst.nodes.append(self.action())
            else:
                lst.nodes.append(self.text_node())

    def action(self) -> _Node:
        tok = self.next_non_space()
        self.action_line = tok.line
        if tok.kind == "KEYWORD":
            if tok.val in ("if", "range", "with"):
                return self.control(tok)
            if tok.val in ("break", "continue"):
                return self.loop_control(tok)
            if tok.val in ("define", "template", "block"):
                self.fail(f"{{{{{tok.val}}}}} is not supported", tok.line)
        self.backup()
        pos = self.peek().pos
        pipe = self.pipeline("command", "RIGHT")
        return _ActionNode(pos, pipe)

    def loop_control(self, tok: _Tok) -> _Node:
        end = self.next_non_space()
        if end.kind != "RIGHT":
            self.unexpected(end, f"{{{{{tok.val}}}}}")
        if self.range_depth == 0:
            self.fail(f"{{{{{tok.val}}}}} outside {{{{range}}}}", tok.line)
        return _LoopControl(tok.pos, tok.val)

    def control(self, tok: _Tok) -> _Node:
        kind = tok.val
        mark = len(self.vars)
        pipe = self.pipeline(kind, "RIGHT")
        if kind == "range":
            self.range_depth += 1
        body, ended = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_body: _ListNode | None = None
        if ended == "else":
            nxt = self.peek_non_space()
            if kind in ("if", "with") and nxt.kind == "KEYWORD" and nxt.val == kind:
                # "{{else if …}}" / "{{else with …}}": a nested branch that consumes the {{end}}.
                inner_tok = self.next_non_space()
                else_body = _ListNode(inner_tok.pos, [self.control(inner_tok)])
            else:
                end = self.next_non_space()
                if end.kind != "RIGHT":
                    self.unexpected(end, "else")
                else_body, ended2 = self.item_list()
                if ended2 != "end":
                    self.fail("expected end; found {{else}}", self.tokens[self.i - 1].line)
                self.expect_right("end")
        else:
            self.expect_right("end")
        del self.vars[mark:]
        return _BranchNode(tok.pos, kind, pipe, body, else_body)

    def expect_right(self, context: str) -> None:
        tok = self.next_non_space()
        if tok.kind != "RIGHT":
            self.unexpected(tok, context)

    def pipeline(self, context: str, end: str) -> _PipeNode:
        start = self.peek_non_space()
        decl: list[str] = []
        is_assign = False
        if start.kind == "VAR":
            decl, is_assign = self.declarations(context)
        pipe = _PipeNode(start.pos, decl, is_assign, [])
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def declarations(self, context: str) -> tuple[list[str], bool]:
        save = self.i
        var = self.next_non_space()
        nxt = self.peek_non_space()
        if nxt.kind in ("DECLARE", "ASSIGN"):
            self.next_non_space()
            if nxt.kind == "DECLARE":
                self.vars.append(var.val)
            elif var.val not in self.vars:
                self.fail(f"undefined variable {_go_quote(var.val)}", var.line)
            return [var.val], nxt.kind == "ASSIGN"
        if nxt.kind == "CHAR" and nxt.val == ",":
            self.next_non_space()
            second = self.next_non_space()
            op = self.next_non_space()
            if context == "range" and second.kind == "VAR" and op.kind in ("DECLARE", "ASSIGN"):
                if op.kind == "DECLARE":
                    self.vars.extend([var.val, second.val])
                return [var.val, second.val], op.kind == "ASSIGN"
            self.fail(f"too many declarations in {context}", var.line)
        self.i = save
        return [], False

    def check_pipeline(self, pipe: _PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.fail(f"missing value for {context}")
        for n, cmd in enumerate(pipe.cmds[1:], start=2):
            first = cmd.args[0]
            if isinstance(first, _ConstNode | _DotNode | _NilNode):
                self.fail(f"non executable command in pipeline stage {n}")

    def command(self) -> _CommandNode:
        cmd = _CommandNode(self.peek_non_space().pos, [])
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "SPACE":
                continue
            if tok.kind in ("RIGHT", "RPAREN"):
                self.backup()
            elif tok.kind != "PIPE":
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.fail("empty command")
        return cmd

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == "FIELD":
            pos = self.peek().pos  # Go positions a chain at its first chained field
            fields: list[str] = []
            while self.peek().kind == "FIELD":
                fields.append(self.next().val[1:])
            if isinstance(node, _FieldNode):
                return _FieldNode(pos, node.idents + fields)
            if isinstance(node, _VarNode):
                return _VarNode(pos, node.idents + fields)
            if isinstance(node, _ConstNode | _NilNode | _DotNode):
                self.fail(f"unexpected . after term {_go_quote(str(node))}")
            return _ChainNode(pos, node, fields)
        return node

    def term(self) -> _Node | None:
        tok = self.next_non_space()
        kind = tok.kind
        if kind == "IDENT":
            if tok.val not in self.funcs:
                self.fail(f"function {_go_quote(tok.val)} not defined", tok.line)
            return _IdentNode(tok.pos, tok.val)
        if kind == "DOT":
            return _DotNode(tok.pos)
        if kind == "NIL":
            return _NilNode(tok.pos)
        if kind == "VAR":
            name = tok.val.split(".", 1)[0]
            if name not in self.vars:
                self.fail(f"undefined variable {_go_quote(name)}", tok.line)
            return _VarNode(tok.pos, [tok.val])
        if kind == "FIELD":
            return _FieldNode(tok.pos, [tok.val[1:]])
        if kind == "BOOL":
            return _ConstNode(tok.pos, tok.val == "true", tok.val, "bool")
        if kind in ("NUMBER", "CHARCONST"):
            return _ConstNode(tok.pos, self.number_value(tok), tok.val)
        if kind == "LPAREN":
            pipe = self.pipeline("parenthesized pipeline", "RPAREN")
            return pipe
        if kind in ("STRING", "RAW"):
            if kind == "RAW":
                return _ConstNode(tok.pos, tok.val[1:-1].replace("\r", ""), tok.val, "string")
            try:
                return _ConstNode(tok.pos, _unquote(tok.val), tok.val, "string")
            except ValueError:
                self.fail("invalid syntax", tok.line)
        self.backup()
        return None

    def number_value(self, tok: _Tok) -> int | float:
        text = tok.val
        if tok.kind == "CHARCONST":
            try:
                value = _unquote(text)
            except ValueError:
                self.fail(f"malformed character constant: {text}", tok.line)
            if len(value) != 1:
                self.fail(f"malformed character constant: {text}", tok.line)
            return ord(value)
        clean = text.replace("_", "")
        try:
            if text.endswith("i"):
                raise ValueError
            if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)", clean):
                sign = -1 if clean.startswith("-") else 1
                body = clean.lstrip("+-")
                if re.fullmatch(r"0[0-7]+", body):
                    return sign * int(body, 8)
                return sign * int(body, 0)
            return float(clean)
        except ValueError:
            self.fail(f"illegal number syntax: {_go_quote(text)}", tok.line)


def _describe(tok: _Tok) -> str:
    if tok.kind == "EOF":
        return "EOF"
    if tok.kind == "KEYWORD":
        return f"<{tok.val}>"
    if tok.kind == "RIGHT":
        return '"}}"'
    if len(tok.val) > 10:
        return _go_quote(tok.val)[:11] + '"...'
    return _go_quote(tok.val)


# --- execution ---------------------------------------------------------------------------------


class _ExecError(Exception):
    pass


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


Function = Callable[..., Any]


@dataclass
class _State:
    text: str
    funcs: Mapping[str, Function]
    missing_error: bool
    out: list[str]
    vars: list[tuple[str, Any]]
    node: _Node | None = None

    def fail(self, message: str) -> NoReturn:
        raise _ExecError(message)


def _is_true(value: Any) -> bool:
    if value is None or value is _MISSING:
        return False
    if isinstance(value, bool | int | float):
        return bool(value)
    if isinstance(value, str | bytes | list | tuple | dict | _Nil):
        return len(value) > 0
    return True


class Template:
    """A parsed template. ``execute(data)`` renders it; errors raise :class:`TemplateError`."""

    def __init__(self, text: str, funcs: Mapping[str, Function] | None = None) -> None:
        self.text = text
        self.funcs: dict[str, Function] = {**BASIC_FUNCTIONS, **(funcs or {})}
        self._root = _Parser(text, self.funcs).parse()

    def execute(
        self,
        data: Any,
        *,
        missing_key_error: bool = False,
        funcs: Mapping[str, Function] | None = None,
        partial: list[str] | None = None,
    ) -> str:
        """Render with ``data`` as dot. ``funcs`` overrides functions by name (as Go's ``Funcs``
        before ``Execute``); ``partial`` receives the output written before an error."""
        state = _State(
            self.text,
            {**self.funcs, **(funcs or {})},
            missing_key_error,
            partial if partial is not None else [],
            [("$", data)],
        )
        try:
            _walk(state, data, self._root)
        except _ExecError as e:
            raise TemplateError(self._exec_message(state, str(e))) from None
        return "".join(state.out)

    def _exec_message(self, state: _State, message: str) -> str:
        node = state.node
        if node is None:
            return f'template: : executing "" at <>: {message}'
        before = self.text[: node.pos]
        line = before.count("\n") + 1
        col = len(before[before.rfind("\n") + 1 :].encode())
        context = str(node)
        return f'template: :{line}:{col}: executing "" at <{context}>: {message}'


def parse(text: str, funcs: Mapping[str, Function] | None = None) -> Template:
    """Parse ``text`` with Docker's function set (plus ``funcs``)."""
    return Template(text, funcs)


def _walk(state: _State, dot: Any, node: _Node) -> None:
    if isinstance(node, _Text):
        state.out.append(node.text)
    elif isinstance(node, _ListNode):
        for child in node.nodes:
            _walk(state, dot, child)
    elif isinstance(node, _ActionNode):
        value = _eval_pipeline(state, dot, node.pipe)
        if not node.pipe.decl:
            state.out.append(go_sprint(value))
    elif isinstance(node, _BranchNode):
        _walk_branch(state, dot, node)
    elif isinstance(node, _LoopControl):
        raise _Break() if node.kind == "break" else _Continue()


def _walk_branch(state: _State, dot: Any, node: _BranchNode) -> None:
    mark = len(state.vars)
    try:
        value = _eval_pipeline(state, dot, node.pipe)
        if node.kind == "range":
            _walk_range(state, dot, node, value)
        elif _is_true(value):
            _walk(state, value if node.kind == "with" else dot, node.body)
        elif node.else_body is not None:
            _walk(state, dot, node.else_body)
    finally:
        del state.vars[mark:]


def _range_items(state: _State, value: Any) -> list[tuple[Any, Any]] | None:
    if value is None or value is _MISSING or isinstance(value, _Nil):
        return []
    if isinstance(value, list | tuple | bytes | bytearray):
        return list(enumerate(value))
    if isinstance(value, dict):
        return [(k, value[k]) for k in sorted(value, key=_sort_key)]
    if isinstance(value, int) and not isinstance(value, bool):
        return [(i, i) for i in range(value)]
    return None


def _walk_range(state: _State, dot: Any, node: _BranchNode, value: Any) -> None:
    items = _range_items(state, value)
    if items is None:
        state.node = node.pipe
        state.fail(f"range can't iterate over {go_sprint(value)}")
    if not items:
        if node.else_body is not None:
            _walk(state, dot, node.else_body)
        return
    decl = node.pipe.decl
    for key, elem in items:
        if len(decl) == 1:
            _set_var(state, decl[0], elem, node.pipe.is_assign)
        elif len(decl) == 2:
            _set_var(state, decl[0], key, node.pipe.is_assign)
            _set_var(state, decl[1], elem, node.pipe.is_assign)
        try:
            _walk(state, elem, node.body)
        except _Break:
            break
        except _Continue:
            continue


def _set_var(state: _State, name: str, value: Any, assign: bool) -> None:
    if assign:
        for i in range(len(state.vars) - 1, -1, -1):
            if state.vars[i][0] == name:
                state.vars[i] = (name, value)
                return
        state.fail(f"undefined variable: {name}")
    state.vars.append((name, value))


def _var(state: _State, name: str) -> Any:
    for var_name, value in reversed(state.vars):
        if var_name == name:
            return value
    state.fail(f"undefined variable: {name}")


def _eval_pipeline(state: _State, dot: Any, pipe: _PipeNode) -> Any:
    value: Any = _MISSING
    first = True
    for cmd in pipe.cmds:
        value = _eval_command(state, dot, cmd, _MISSING if first else value)
        first = False
    for name in pipe.decl:
        _set_var(state, name, value, pipe.is_assign)
    return value


def _eval_command(state: _State, dot: Any, cmd: _CommandNode, final: Any) -> Any:
    first = cmd.args[0]
    state.node = first
    if isinstance(first, _FieldNode):
        return _eval_fields(state, dot, dot, first, first.idents, cmd.args, final)
    if isinstance(first, _ChainNode):
        base = _eval_arg(state, dot, first.node)
        return _eval_fields(state, dot, base, first, first.fields, cmd.args, final)
    if isinstance(first, _VarNode):
        value = _var(state, first.idents[0])
        if len(first.idents) == 1:
            _not_a_function(state, cmd.args, final, first)
            return value
        return _eval_fields(state, dot, value, first, first.idents[1:], cmd.args, final)
    if isinstance(first, _IdentNode):
        return _eval_function(state, dot, first, cmd, cmd.args, final)
    _not_a_function(state, cmd.args, final, first)
    if isinstance(first, _PipeNode):
        return _eval_pipeline(state, dot, first)
    if isinstance(first, _DotNode):
        return dot
    if isinstance(first, _NilNode):
        state.fail("nil is not a command")
    if isinstance(first, _ConstNode):
        return first.value
    state.fail(f"can't evaluate command {first}")


def _not_a_function(state: _State, args: Sequence[_Node], final: Any, node: _Node) -> None:
    if len(args) > 1 or final is not _MISSING:
        state.node = node
        state.fail(f"can't give argument to non-function {args[0]}")


def _eval_arg(state: _State, dot: Any, node: _Node) -> Any:
    state.node = node
    if isinstance(node, _DotNode):
        return dot
    if isinstance(node, _NilNode):
        return None
    if isinstance(node, _ConstNode):
        return node.value
    if isinstance(node, _FieldNode):
        return _eval_fields(state, dot, dot, node, node.idents, [node], _MISSING)
    if isinstance(node, _VarNode):
        value = _var(state, node.idents[0])
        if len(node.idents) == 1:
            return value
        return _eval_fields(state, dot, value, node, node.idents[1:], [node], _MISSING)
    if isinstance(node, _PipeNode):
        return _eval_pipeline(state, dot, node)
    if isinstance(node, _ChainNode):
        base = _eval_arg(state, dot, node.node)
        return _eval_fields(state, dot, base, node, node.fields, [node], _MISSING)
    if isinstance(node, _IdentNode):
        return _eval_function(state, dot, node, node, [node], _MISSING)
    state.fail(f"can't handle {node} for arg")


def _eval_fields(
    state: _State,
    dot: Any,
    receiver: Any,
    node: _Node,
    idents: Sequence[str],
    args: Sequence[_Node],
    final: Any,
) -> Any:
    for ident in idents[:-1]:
        receiver = _eval_field(state, dot, ident, node, [node], _MISSING, receiver)
    return _eval_field(state, dot, idents[-1], node, args, final, receiver)


def _eval_field(
    state: _State,
    dot: Any,
    name: str,
    node: _Node,
    args: Sequence[_Node],
    final: Any,
    receiver: Any,
) -> Any:
    state.node = node
    has_args = len(args) > 1 or final is not _MISSING
    if receiver is _MISSING:
        if state.missing_error:
            state.fail(f"nil data; no entry for key {_go_quote(name)}")
        return _MISSING
    if receiver is None:
        state.fail(f"nil pointer evaluating interface {{}}.{name}")
    if isinstance(receiver, dict):
        if has_args:
            state.fail(f"{name} is not a method but has arguments")
        if name in receiver:
            return receiver[name]
        if state.missing_error:
            state.fail(f"map has no entry for key {_go_quote(name)}")
        return _MISSING
    if receiver is NIL_MAP:
        if state.missing_error:
            state.fail(f"map has no entry for key {_go_quote(name)}")
        return _MISSING
    fields = _struct_fields(receiver)
    if fields is not None:
        if name in fields:
            value = fields[name]
            if callable(value) and not isinstance(value, type):
                return _call(state, dot, value, name, node, args, final)
            if has_args:
                state.fail(f"{name} has arguments but cannot be invoked as function")
            return value
        method = getattr(receiver, name, None) if not isinstance(receiver, Struct) else None
        if callable(method):
            return _call(state, dot, method, name, node, args, final)
        state.fail(f"can't evaluate field {name} in type {_type_name(receiver)}")
    if (
        not isinstance(receiver, str | int | float | bool | list | tuple | bytes | _Nil)
        and name[:1].isupper()
    ):
        attr = getattr(receiver, name, _MISSING)
        if attr is not _MISSING:
            if callable(attr):
                return _call(state, dot, attr, name, node, args, final)
            if has_args:
                state.fail(f"{name} has arguments but cannot be invoked as function")
            return attr
    state.fail(f"can't evaluate field {name} in type {_type_name(receiver)}")


def _call(
    state: _State, dot: Any, fn: Function, name: str, node: _Node, args: Sequence[_Node], final: Any
) -> Any:
    values = [_eval_arg(state, dot, a) for a in args[1:]]
    if final is not _MISSING:
        values.append(final)
    state.node = node
    try:
        return fn(*values)
    except TypeError as e:
        state.fail(f"wrong number of args for {name}: {e}")
    except _ExecError:
        raise
    except Exception as e:
        state.fail(f"error calling {name}: {e}")


def _eval_function(
    state: _State, dot: Any, ident: _IdentNode, cmd: _Node, args: Sequence[_Node], final: Any
) -> Any:
    name = ident.name
    fn = state.funcs.get(name)
    if fn is None:
        state.fail(f"{_go_quote(name)} is not a defined function")
    if fn is _fn_and or fn is _fn_or:
        return _eval_logic(state, dot, ident, cmd, args, final)
    nodes = list(args[1:])
    count = len(nodes) + (0 if final is _MISSING else 1)
    sig = _SIGNATURES.get(fn)
    if sig is not None:
        fixed, variadic = sig
        if (variadic is None and count != len(fixed)) or count < len(fixed):
            state.node = cmd
            least = "at least " if variadic is not None else ""
            state.fail(f"wrong number of args for {name}: want {least}{len(fixed)} got {count}")
        kinds = [fixed[i] if i < len(fixed) else (variadic or "any") for i in range(count)]
        values = [_eval_typed_arg(state, dot, n, k) for n, k in zip(nodes, kinds, strict=False)]
        if final is not _MISSING:
            values.append(_validate(state, final, kinds[-1]))
    else:
        values = [_eval_arg(state, dot, n) for n in nodes]
        if final is not _MISSING:
            values.append(final)
    state.node = cmd
    try:
        return fn(*values)
    except _ArgError as e:
        state.fail(str(e))
    except _ExecError:
        raise
    except _CallError as e:
        state.fail(f"error calling {name}: {e}")
    except TypeError:
        if sig is not None:
            raise
        want, variadic_fn = _arity(fn)
        least = "at least " if variadic_fn else ""
        state.fail(f"wrong number of args for {name}: want {least}{want} got {len(values)}")


def _eval_typed_arg(state: _State, dot: Any, node: _Node, kind: str) -> Any:
    """Go's evalArg: constants must suit the parameter, other values are checked after evaluation."""
    if kind != "any" and isinstance(node, _ConstNode):
        state.node = node
        if kind == "string":
            if node.kind != "string":
                state.fail(f"expected string; found {node}")
            return node.value
        if kind == "int":
            value = node.value
            if node.kind != "number" or (isinstance(value, float) and not value.is_integer()):
                state.fail(f"expected integer; found {node}")
            return int(value)
        state.fail(f"can't handle {node} for arg of type {kind}")
    if kind != "any" and isinstance(node, _NilNode):
        state.node = node
        if kind == "[]string":
            return []
        state.fail(f"cannot assign nil to {kind}")
    value = _eval_arg(state, dot, node)
    state.node = node
    return _validate(state, value, kind)


def _validate(state: _State, value: Any, kind: str) -> Any:
    if kind == "any":
        return value
    if value is None or value is _MISSING or isinstance(value, _Nil):
        if kind == "[]string":
            return []
        state.fail(f"invalid value; expected {kind}")
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if not ok:
        state.fail(f"wrong type for value; expected {kind}; got {_type_name(value)}")
    return value


def _arity(fn: Function) -> tuple[int, bool]:
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 0, True
    params = list(sig.parameters.values())
    variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
    fixed = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(fixed), variadic


def _eval_logic(
    state: _State, dot: Any, ident: _IdentNode, cmd: _Node, args: Sequence[_Node], final: Any
) -> Any:
    nodes = list(args[1:])
    count = len(nodes) + (0 if final is _MISSING else 1)
    if count < 1:
        state.node = cmd
        state.fail(f"wrong number of args for {ident.name}: want at least 1 got 0")
    want = ident.name == "or"
    value: Any = _MISSING
    for n in nodes:
        value = _eval_arg(state, dot, n)
        if _is_true(value) == want:
            return value
    if final is not _MISSING:
        value = final
    return value


# --- functions ---------------------------------------------------------------------------------


class _ArgError(Exception):
    """Wrong argument type (reported without the "error calling" prefix, as Go)."""


class _CallError(Exception):
    """The function itself failed ("error calling NAME: ...")."""


def _want_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _ArgError(f"wrong type for value; expected string; got {_type_name(value)}")


def _want_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _ArgError(f"wrong type for value; expected int; got {_type_name(value)}")


def _want_strings(value: Any) -> list[str]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    if value is NIL_SLICE or value is None:
        return []
    raise _ArgError(f"wrong type for value; expected []string; got {_type_name(value)}")


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
        raise _CallError(f"slice bounds out of range [:{n}]")
    return raw[:n].decode(errors="ignore")


def _fn_len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list | tuple | dict | bytes | bytearray | _Nil):
        return len(value)
    raise _CallError(f"len of type {_type_name(value)}")


def _fn_index(item: Any, *indexes: Any) -> Any:
    if item is None or item is _MISSING:
        raise _CallError("index of untyped nil")
    for idx in indexes:
        if item is NIL_MAP:
            item = None
        elif isinstance(item, dict):
            item = item.get(idx)
        elif isinstance(item, list | tuple | str | bytes | _Nil):
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise _CallError(f"cannot index slice/array with type {_type_name(idx)}")
            seq: Any = item.encode() if isinstance(item, str) else item
            if idx < 0 or idx >= len(seq):
                raise _CallError(f"index out of range: {idx}")
            item = seq[idx]
        elif item is None:
            raise _CallError("index of untyped nil")
        else:
            raise _CallError(f"can't index item of type {_type_name(item)}")
    return item


def _fn_slice(item: Any, *indexes: Any) -> Any:
    if not isinstance(item, list | tuple | str):
        raise _CallError(f"can't slice item of type {_type_name(item)}")
    if len(indexes) > 3:
        raise _CallError(f"too many slice indexes: {len(indexes)}")
    bounds = [_want_int(i) for i in indexes]
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise _CallError(f"index out of range: {end if end > len(item) else start}")
    return item[start:end]


def _fn_not(value: Any) -> bool:
    return not _is_true(value)


def _fn_and(*values: Any) -> Any:  # evaluated lazily by _eval_logic
    raise AssertionError


def _fn_or(*values: Any) -> Any:  # evaluated lazily by _eval_logic
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
        extra = ", ".join(f"{_type_name(a)}={go_sprint(a, top=False)}" for a in args[used:])
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
        items = sorted(arg.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(f"{_format_s(k)}:{_format_s(v)}" for k, v in items) + "]"
    if arg is None:
        return "%!s(<nil>)"
    return f"%!s({_type_name(arg)}={go_sprint(arg, top=False)})"


def _format_verb(arg: Any, verb: str, flags: str, width: str | None, prec: str | None) -> str:
    if verb == "v":
        body = go_sprint(arg, top=False)
    elif verb == "s":
        body = _format_s(arg)
        if prec is not None:
            body = body[: int(prec)]
    elif verb == "q" and isinstance(arg, str):
        body = _go_quote(arg)
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
        body = format(float(arg), spec) if prec is not None or verb not in "gG" else _go_float(float(arg))
    elif verb == "c" and isinstance(arg, int) and not isinstance(arg, bool):
        body = chr(arg)
    elif verb == "T":
        body = _type_name(arg)
    else:
        return f"%!{verb}({_type_name(arg)}={go_sprint(arg, top=False)})"
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
    return type(a) is type(b)


def _basic(value: Any) -> bool:
    return isinstance(value, bool | int | float | str)


def _fn_eq(first: Any, *others: Any) -> bool:
    if not others:
        raise _CallError("missing argument for comparison")
    for other in others:
        if first is None or other is None or first is _MISSING or other is _MISSING:
            if (first in (None, _MISSING)) and (other in (None, _MISSING)):
                return True
            continue
        if not _basic(first) or not _basic(other):
            raise _CallError("non-comparable type")
        if not _comparable(first, other):
            raise _CallError("incompatible types for comparison")
        if first == other:
            return True
    return False


def _fn_ne(a: Any, b: Any) -> bool:
    return not _fn_eq(a, b)


def _ordered(a: Any, b: Any) -> None:
    if not _basic(a) or not _basic(b) or isinstance(a, bool) or isinstance(b, bool):
        raise _CallError("invalid type for comparison")
    if not _comparable(a, b):
        raise _CallError("incompatible types for comparison")


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
        raise _CallError(f"non-function {go_sprint(fn, top=False)} of type {_type_name(fn)}")
    return fn(*args)


BASIC_FUNCTIONS: dict[str, Function] = {
    # Go's builtins
    "and": _fn_and,
    "or": _fn_or,
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
_SIGNATURES: dict[Function, tuple[tuple[str, ...], str | None]] = {
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
_SIGNATURES[_header_one] = (("string",), None)
_SIGNATURES[_header_two] = (("string", "string"), None)
_SIGNATURES[_header_truncate] = (("string", "int"), None)


# --- Docker's --format handling ----------------------------------------------------------------

TABLE_KEY = "table"


class Format:
    """A ``--format`` value of a list command (``images``, ``history``, ``ps``…), as Docker's
    formatter handles it: a ``table`` prefix gives a header row and tabwriter alignment, ``\\t`` and
    ``\\n`` written literally are escapes, ``json`` alone means ``{{json .}}``.

    Parse and execution errors raise :class:`TemplateError` ``template parsing error: …`` (exit 1).
    """

    def __init__(self, format_string: str) -> None:
        self.raw = format_string
        self.is_table = format_string.startswith(TABLE_KEY)
        text = format_string
        if self.is_table:
            text = text[len(TABLE_KEY) :]
        elif format_string == "json":
            text = "{{json .}}"
        text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
        self.text = text
        try:
            self.template = Template(text)
        except TemplateError as e:
            raise TemplateError(f"template parsing error: {e}") from None

    def render_row(self, row: Any, *, struct_name: str | None = None) -> str:
        """One row: the template's output and a newline."""
        data = Struct(struct_name, row) if struct_name is not None and isinstance(row, Mapping) else row
        try:
            return self.template.execute(data) + "\n"
        except TemplateError as e:
            raise TemplateError(f"template parsing error: {e}") from None

    def render(
        self,
        rows: Iterable[Any],
        headers: Mapping[str, str] | None = None,
        *,
        struct_name: str | None = None,
    ) -> str:
        """All rows; for a table, the header line (the template run over ``headers``, field name →
        column title, with Docker's header functions) first and everything aligned.

        With ``struct_name``, mapping rows act as that Go struct: an unknown field is an error
        (``can't evaluate field Foo in type <struct_name>``) as with Docker's typed contexts.
        """
        body = "".join(self.render_row(row, struct_name=struct_name) for row in rows)
        if not self.is_table:
            return body
        return tabwrite(self.header(headers or {}) + "\n" + body)

    def header(self, headers: Mapping[str, str]) -> str:
        partial: list[str] = []
        try:
            return self.template.execute(dict(headers), funcs=HEADER_FUNCTIONS, partial=partial)
        except TemplateError:
            return "".join(partial)  # Docker ignores header errors, keeping what was written


class InspectFormat:
    """``inspect --format``: parse errors are ``template parsing error: …`` with exit code 64, an
    element that fails raises ``template parsing error: …`` (exit 1), as the Docker CLI (which also
    prints an empty line on stdout when no element rendered).

    Docker runs the template on the typed object and, when that fails, on the raw JSON map with
    ``missingkey=error``; pass ``raw`` (the decoded JSON) to get the same fallback.
    """

    def __init__(self, format_string: str) -> None:
        self.raw = format_string
        try:
            self.template = Template(format_string)
        except TemplateError as e:
            raise TemplateError(f"template parsing error: {e}", exit_code=64) from None

    def render(self, element: Any, raw: Any = _MISSING) -> str:
        """The output for one element, newline included."""
        try:
            return self.template.execute(element) + "\n"
        except TemplateError as e:
            if raw is _MISSING:
                raise TemplateError(f"template parsing error: {e}") from None
        try:
            return self.template.execute(raw, missing_key_error=True) + "\n"
        except TemplateError as e:
            raise TemplateError(f"template parsing error: {e}") from None
