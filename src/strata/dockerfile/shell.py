"""Docker's variable substitution in Dockerfile words (``$A``, ``${A}``, ``${A:-x}``, ``${A:+x}``,
``${A:?msg}``, quotes and escapes), as its shell lexer processes one word against an environment."""

from __future__ import annotations

from strata.dockerfile.errors import DockerfileError
from strata.jsonfast import quote

__all__ = ["expand", "expand_words", "getenv"]


def getenv(env: list[str], name: str) -> str | None:
    """The value of ``name`` in ``KEY=VALUE`` entries (first match wins), None when absent."""
    for entry in env:
        key, sep, value = entry.partition("=")
        if key == name:
            return value if sep else ""
    return None


class _Lexer:
    def __init__(self, word: str, env: list[str], escape: str = "\\") -> None:
        self.text = word
        self.pos = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def getenv(self, name: str) -> str:
        return getenv(self.env, name) or ""

    def process(self, stop: str = "") -> str:
        out: list[str] = []
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out)
            if ch == "'":
                out.append(self.single_quote())
            elif ch == '"':
                out.append(self.double_quote())
            elif ch == "$":
                out.append(self.dollar())
            else:
                ch = self.next()
                if ch == self.escape:
                    ch = self.next()
                    if not ch:
                        break
                out.append(ch)
        if stop:
            raise DockerfileError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise DockerfileError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise DockerfileError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape and self.peek() in ('"', "$", self.escape) and self.peek():
                ch = self.next()
            out.append(ch)

    def name(self) -> str:
        ch = self.peek()
        if ch.isdigit():
            digits = ""
            while self.peek().isdigit():
                digits += self.next()
            return digits
        if ch and ch in "*#$@!?-":
            return self.next()
        name = ""
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            name += self.next()
        return name

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.getenv(name) if name else "$"
        self.next()
        if not self.peek():
            raise DockerfileError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise DockerfileError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.getenv(name)
        if ch != ":":
            raise DockerfileError("missing ':' in substitution")
        return self.modifier(name)

    def modifier(self, name: str) -> str:
        modifier = self.next()
        try:
            word = self.process("}")
        except DockerfileError:
            if not self.peek():
                raise DockerfileError("syntax error: missing '}'") from None
            raise
        value = self.getenv(name)
        if modifier == "+":
            return word if value else value
        if modifier == "-":
            return value or word
        if modifier == "?":
            if not value:
                raise DockerfileError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        raise DockerfileError(f"unsupported modifier ({modifier}) in substitution")


def expand(word: str, env: list[str], escape: str = "\\") -> str:
    """One word with its variables substituted and quotes removed (Docker's ProcessWord)."""
    try:
        return _Lexer(word, env, escape).process()
    except DockerfileError as e:
        raise DockerfileError(f"failed to process {quote(word)}: {e}") from None


def expand_words(word: str, env: list[str], escape: str = "\\") -> list[str]:
    """A word that may expand to several (EXPOSE ``$PORTS``): split on blanks after substitution."""
    return expand(word, env, escape).split()
