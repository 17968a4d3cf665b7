"""The errors of Dockerfile parsing and word expansion."""

from __future__ import annotations

from strata.errors import StrataError

__all__ = ["DockerfileError", "ParseError"]


class DockerfileError(StrataError):
    """A Dockerfile (or ``--change``) Docker's builder refuses; ``str()`` is Docker's message."""


class ParseError(DockerfileError):
    """``dockerfile parse error line N: …`` (the whole file is refused before anything runs)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"dockerfile parse error line {line}: {message}")
        self.line = line
        self.reason = message
