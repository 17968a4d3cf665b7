"""One Dockerfile parser: parser directives (``# escape``, ``# syntax``), comments, line
continuations, heredocs (``<<EOF`` as BuildKit reads them) and each instruction's arguments
(JSON or shell form, ``--flags``, name=value pairs). Used by ``build`` and by ``import/commit -c``."""

from __future__ import annotations

import re

from strata.dockerfile.errors import DockerfileError, ParseError
from strata.dockerfile.words import NOT_STRINGS, json_array, name_values, parse_words, split_flags

__all__ = ["INSTRUCTIONS", "Dockerfile", "Heredoc", "Instruction", "parse", "parse_instruction"]

INSTRUCTIONS = frozenset({
    "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
    "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
})  # fmt: skip
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


class Heredoc:  # plain classes here: ``dataclasses`` (with ``inspect``) is a fifth of a cached build's imports
    def __init__(self, name: str, content: str, expand: bool, chomp: bool) -> None:
        self.name = name
        self.content = content  # every line, each ending in a newline
        self.expand = expand  # an unquoted name: the shell expands variables in the body
        self.chomp = chomp  # <<-: leading tabs removed


class Instruction:
    def __init__(
        self, cmd: str, original: str, line: int, flags: list[tuple[str, str | None]] | None = None,
        args: list[str] | None = None, json: bool = False, rest: str = "", heredocs: list[Heredoc] | None = None,
        sub: Instruction | None = None,
    ) -> None:  # fmt: skip
        self.cmd = cmd  # lower case
        self.original = original  # the instruction as written, continuations joined (Docker's Step line)
        self.line = line  # where it starts (1-based)
        self.flags: list[tuple[str, str | None]] = flags if flags is not None else []
        self.args: list[str] = args if args is not None else []
        self.json = json
        self.rest = rest  # the text after the flags
        self.heredocs: list[Heredoc] = heredocs if heredocs is not None else []
        self.sub = sub  # ONBUILD's trigger

    def flag(self, name: str) -> str | None:
        """The last value of ``--name`` (``""`` for a bare flag), None when absent."""
        found = [v for k, v in self.flags if k == name]
        return None if not found else (found[-1] if found[-1] is not None else "")

    def flag_values(self, name: str) -> list[str]:
        return [v or "" for k, v in self.flags if k == name]


class Dockerfile:
    def __init__(self, instructions: list[Instruction], escape: str = "\\", directives: dict[str, str] | None = None) -> None:
        self.instructions = instructions
        self.escape = escape
        self.directives: dict[str, str] = directives if directives is not None else {}
        self.warnings: list[str] = []  # the parser's, as Docker's classic builder prints them


def _directives(lines: list[str]) -> tuple[dict[str, str], int]:
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = _DIRECTIVE.match(line)
        if not m or m.group(1).lower() not in ("escape", "syntax"):
            return found, i
        key = m.group(1).lower()
        if key in found:
            raise ParseError(i + 1, f"only one {key} parser directive can be used")
        found[key] = m.group(2)
    return found, len(lines)


def _continues(line: str, escape: str) -> str | None:
    """The line without its trailing escape (and blanks after it), None when it does not continue."""
    m = re.search(re.escape(escape) + r"[ \t]*$", line)
    return line[: m.start()] if m else None


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _heredocs(text: str, lines: list[str], i: int, start: int) -> tuple[list[Heredoc], int]:
    docs: list[Heredoc] = []
    for m in _HEREDOC.finditer(text):
        chomp, quote, name = m.group(1) == "-", m.group(2), m.group(3)
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise ParseError(start, f"unterminated heredoc {name}")
            line = lines[i]
            i += 1
            if (line.lstrip("\t") if chomp else line) == name:
                break
            body.append((line.lstrip("\t") if chomp else line) + "\n")
        docs.append(Heredoc(name, "".join(body), not quote, chomp))
    return docs, i


def parse(text: str, *, strict: bool = True) -> Dockerfile:
    """Parse a whole Dockerfile; ``strict`` refuses unknown instructions (Docker's parse error)."""
    lines = [line.rstrip("\r") for line in text.removeprefix("\ufeff").split("\n")]
    directives, i = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise ParseError(i, f"invalid ESCAPE '{escape}'. Must be ` or \\")
    out: list[Instruction] = []
    warnings: list[str] = []
    while i < len(lines):
        line, start = lines[i], i + 1
        i += 1
        if not line.strip() or _is_comment(line):
            continue
        text_, i, empty = _join(line, lines, i, escape)
        if empty:
            warnings.append("[WARNING]: Empty continuation line found in:\n    " + text_.lstrip())
        try:
            ins = parse_instruction(text_, start, escape)
        except ParseError as e:  # a name=value list or a JSON array is Docker's AST parser's: its words, no line
            if strict and (text_.split(None, 1)[0].lower() in ("env", "label") or e.reason == NOT_STRINGS):
                raise DockerfileError(f"failed to parse Dockerfile: {e.reason}") from None
            raise
        if ins.cmd in ("run", "copy", "add") and not ins.json:
            ins.heredocs, i = _heredocs(ins.rest, lines, i, start)
        if strict and ins.cmd not in INSTRUCTIONS:
            raise ParseError(start, f"unknown instruction: {ins.cmd.upper()}")
        out.append(ins)
    result = Dockerfile(out, escape, directives)
    if warnings:
        result.warnings = [*warnings, "[WARNING]: Empty continuation lines will become errors in a future release."]
    return result


def _join(line: str, lines: list[str], i: int, escape: str) -> tuple[str, int, bool]:
    """One logical line: continuations joined; comment and empty lines inside them skipped (and
    whether an empty one was: Docker's parser warns of it)."""
    joined, empty = "", False
    while True:
        cut = _continues(line, escape)
        if cut is None:
            return joined + line, i, empty
        joined += cut
        while i < len(lines) and (not lines[i].strip() or _is_comment(lines[i])):
            empty = empty or not lines[i].strip()
            i += 1
        if i >= len(lines):
            return joined, i, empty
        line = lines[i]
        i += 1


def parse_instruction(text: str, line: int = 0, escape: str = "\\") -> Instruction:
    """One logical line as an instruction: its command, flags and arguments as Docker's parser splits them."""
    m = re.match(r"(\S+)\s*(.*)$", text.strip(), re.DOTALL)
    word, rest = (m.group(1), m.group(2)) if m else ("", "")
    cmd = word.lower()
    flags, rest = split_flags(rest)
    ins = Instruction(cmd, text.strip(), line, flags, [], rest=rest)
    try:
        _arguments(ins, rest, escape)
    except ParseError:
        raise
    except DockerfileError as e:
        if line:
            raise ParseError(line, str(e)) from None
        raise
    return ins


def _maybe_json(ins: Instruction, rest: str) -> None:
    arr = json_array(rest) if rest else None
    ins.json = arr is not None
    ins.args = arr if arr is not None else ([rest] if rest else [])


def _arguments(ins: Instruction, rest: str, escape: str) -> None:
    cmd = ins.cmd
    if cmd in ("env", "label"):
        ins.args = name_values(rest, cmd.upper(), escape)
    elif cmd == "arg":
        ins.args = parse_words(rest, escape)
    elif cmd in ("cmd", "entrypoint", "run", "shell"):
        _maybe_json(ins, rest)
    elif cmd in ("volume", "add", "copy"):
        arr = json_array(rest)
        ins.json = arr is not None
        ins.args = arr if arr is not None else rest.split()
    elif cmd in ("expose", "from"):
        ins.args = rest.split()
    elif cmd in ("user", "workdir", "stopsignal", "maintainer"):
        ins.args = [rest] if rest else []
    elif cmd == "onbuild":
        if rest:
            ins.sub = parse_instruction(rest, 0, escape)
            ins.args = [ins.sub.cmd]
    elif cmd == "healthcheck":
        typ, _, body = rest.partition(" ")
        body = body.strip()
        arr = json_array(body) if body else None
        ins.json = arr is not None
        ins.args = ([typ] if typ else []) + (arr if arr is not None else ([body] if body else []))
