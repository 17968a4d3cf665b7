"""The lexer of Go's ``text/template`` (``lex.go``): actions, trimming, comments and tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from strata.gotemplate.quote import go_quote, go_rune

__all__ = ["Lexer", "Tok"]


_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with"}
_SPACE = " \t\r\n"
_NUMBER_RE = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]*)?"
    r"|0[bB][01_]*|0[oO][0-7_]*|[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]*)?)i?"
)


@dataclass
class Tok:
    kind: str  # TEXT LEFT RIGHT SPACE FIELD DOT VAR IDENT KEYWORD BOOL NIL NUMBER STRING RAW CHAR
    #            CHARCONST PIPE ASSIGN DECLARE LPAREN RPAREN EOF ERROR
    val: str
    pos: int
    line: int


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


class Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[Tok] = []
        self.paren = 0

    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def emit(self, kind: str, val: str, pos: int) -> None:
        self.tokens.append(Tok(kind, val, pos, self.line_at(pos)))

    def error(self, message: str) -> list[Tok]:
        self.emit("ERROR", message, self.pos)
        return self.tokens

    def run(self) -> list[Tok]:
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
                return self.right_delim(trim)
            if self.pos >= len(text):
                self.error("unclosed action")
                return False
            start = self.pos
            ch = text[start]
            if ch in _SPACE:
                self.space(start)
                continue
            self.pos += 1
            if not self.action_token(ch, start):
                return False

    def right_delim(self, trim: bool) -> bool:
        if self.paren > 0:
            self.error("unclosed left paren")
            return False
        start = self.pos
        self.pos += 4 if trim else 2
        self.emit("RIGHT", "}}", start)
        if trim:
            self.trim_right()
        return True

    def space(self, start: int) -> None:
        text = self.text
        while self.pos < len(text) and text[self.pos] in _SPACE:
            if self.at_right_delim() == (True, True):
                break
            self.pos += 1
        if self.pos > start:
            self.emit("SPACE", text[start : self.pos], start)

    def action_token(self, ch: str, start: int) -> bool:
        """One token inside an action starting with ``ch`` (already consumed); False after an error."""
        text = self.text
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
            return self.quote(start)
        elif ch == "`":
            end = text.find("`", self.pos)
            if end < 0:
                self.error("unterminated raw quoted string")
                return False
            self.pos = end + 1
            self.emit("RAW", text[start : self.pos], start)
        elif ch == "$":
            return self.field_or_variable("VAR", start)
        elif ch == "'":
            return self.char_constant(start)
        elif ch == "." and not (self.pos < len(text) and text[self.pos].isdigit()):
            return self.field_or_variable("FIELD", start)
        elif ch in "+-." or ch.isdigit():
            return self.number(start)
        elif _is_alnum(ch):
            return self.identifier(start)
        else:
            return self.punctuation(ch, start)
        return True

    def punctuation(self, ch: str, start: int) -> bool:
        if ch == "(":
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
            self.error(f"unrecognized character in action: {go_rune(ch)}")
            return False
        return True

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
            self.error(f"bad character {go_rune(self.text[self.pos])}")
            return False
        self.emit(kind, self.text[start : self.pos], start)
        return True

    def identifier(self, start: int) -> bool:
        while self.pos < len(self.text) and _is_alnum(self.text[self.pos]):
            self.pos += 1
        if not self.at_terminator():
            self.error(f"bad character {go_rune(self.text[self.pos])}")
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
            self.error(f"bad number syntax: {go_quote(self.text[start : self.pos])}")
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
