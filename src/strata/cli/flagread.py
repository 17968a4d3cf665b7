"""One pass over a command's words as Go's pflag reads them: the token reader ``strata.cli.pflag`` (over
argparse's declarations) and ``strata.cli.listing`` (over a flag table) share.

pflag's rules: a boolean flag takes ``=VALUE`` only, never the next word; a flag that needs a value takes
the next word even when it starts with ``-``; short flags combine (``-aq``, ``-fVALUE``, ``-f=VALUE``);
``--`` ends the flags; ``-`` alone is an argument. What a flag is and what setting it does is the
caller's (``find``); what a bad word does (``fail``: pflag's sentence, or a quiet refusal) too.
This module imports nothing: the listing commands and ``build`` read their words with it at start-up.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's import costs a listing command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    # a flag found: (it takes a value, set(value or None for a flag given alone, the flag as typed))
    Found = tuple[bool, Callable[[str | None, str], None]]

__all__ = ["FALSE", "TRUE", "FlagReader", "bool_flag"]

TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool
FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class FlagReader:
    """The reader; subclasses give ``find`` and ``fail``. ``positionals`` collects the arguments."""

    def __init__(self, args: list[str]) -> None:
        self.args, self.i = args, 0
        self.positionals: list[str] = []

    def find(self, name: str) -> Found | None:
        """The flag ``name`` (``--long`` or ``-s``), None for no such flag."""
        raise NotImplementedError

    def fail(self, message: str) -> NoReturn:
        """A word pflag refuses, with pflag's sentence."""
        raise NotImplementedError

    def next_value(self) -> str | None:
        if self.i < len(self.args):
            self.i += 1
            return self.args[self.i - 1]
        return None

    def long(self, word: str) -> None:
        name, eq, value = word.partition("=")
        found = self.find(name)
        if found is None:
            self.fail(f"unknown flag: {name}")
        takes_value, set_value = found
        if eq or not takes_value:
            set_value(value if eq else None, name)
            return
        given = self.next_value()
        if given is None:
            self.fail(f"flag needs an argument: {name}")
        set_value(given, name)

    def shorts(self, word: str) -> None:
        letters = word[1:]
        while letters:
            c, rest = letters[0], letters[1:]
            found = self.find(f"-{c}")
            if found is None:
                self.fail(f"unknown shorthand flag: '{c}' in -{letters}")
            takes_value, set_value = found
            if not takes_value:
                if len(rest) > 1 and rest[0] == "=":
                    set_value(rest[1:], f"-{c}")
                    return
                set_value(None, f"-{c}")
                letters = rest
                continue
            if rest:
                set_value(rest[1:] if len(rest) > 1 and rest[0] == "=" else rest, f"-{c}")
                return
            given = self.next_value()
            if given is None:
                self.fail(f"flag needs an argument: '{c}' in -{letters}")
            set_value(given, f"-{c}")
            return

    def read(self, interspersed: bool = True) -> None:
        """Every word; ``interspersed`` False: the words after the first argument are all arguments."""
        while self.i < len(self.args):
            word = self.args[self.i]
            self.i += 1
            if word == "--":
                self.positionals += self.args[self.i:]
                return
            if word.startswith("--"):
                self.long(word)
            elif word.startswith("-") and word != "-":
                self.shorts(word)
            else:
                self.positionals.append(word)
                if not interspersed:
                    self.positionals += self.args[self.i:]
                    return


def bool_flag(text: str) -> bool:
    """argparse's ``type=`` of a Go-style boolean flag (``--sig-proxy=false``); pflag's own error comes first."""
    value = text.lstrip("=").lower()
    if value in ("true", "1", "t", "yes"):
        return True
    if value in ("false", "0", "f", "no"):
        return False
    import argparse

    raise argparse.ArgumentTypeError(f'invalid boolean value "{text}"')
