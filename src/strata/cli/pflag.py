"""A command's arguments read as Docker's flag parser (Go's pflag, under cobra) reads them, then handed to
argparse in a form it cannot misread.

What pflag does and argparse does not: a boolean flag takes ``=VALUE`` in Go's ``strconv.ParseBool``
spellings (``--rm=false``, ``-t=0``, ``-itd=true``) and never the next word (``commit -p c img``); a flag
that needs a value takes the next word even when it starts with ``-`` (``-e -x``); no long flag is
abbreviated; ``--`` ends the flags; after a command's first argument, run/create/exec (the commands whose
last argument is the container's command line) take every further word as an argument. The arity of the
arguments is checked here too, from the command's declared positionals, with cobra's wording.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from strata.cli.flagread import FALSE, TRUE, FlagReader
from strata.errors import StrataError, UsageError

__all__ = ["NEEDS_COMMAND", "ArityError", "HelpRequested", "arity", "first_remainder", "normalise", "parse_bool",
           "shown"]

# the metavar of a command line (``nargs=REMAINDER``) that needs at least its command word (exec's; run's
# command is optional), as Docker's usage line writes it
NEEDS_COMMAND = "COMMAND [ARG...]"


class HelpRequested(Exception):
    """``-h``/``--help`` among a command's flags: the caller prints the command's help and exits 0."""


class ArityError(StrataError):
    """Too few or too many arguments: cobra's sentence (the usage block is added by the caller)."""

    def __init__(self, prog: str, least: int, most: int | None) -> None:
        self.prog, self.least, self.most = prog, least, most
        super().__init__(_arity_sentence(prog, least, most))


def _plural(n: int) -> str:
    return f"{n} argument" if n == 1 else f"{n} arguments"


def _arity_sentence(prog: str, least: int, most: int | None) -> str:
    if most == 0:
        return f'"{prog}" accepts no arguments.'
    if least == most:
        return f'"{prog}" requires exactly {_plural(least)}.'
    if most is None:
        return f'"{prog}" requires at least {_plural(least)}.'
    if least == 0:
        return f'"{prog}" requires at most {_plural(most)}.'
    return f'"{prog}" requires at least {least} and at most {_plural(most)}.'


def parse_bool(value: str, shown: str) -> bool:
    """Go's ``strconv.ParseBool``, failing with pflag's sentence."""
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise UsageError(f'invalid argument "{value}" for "{shown}" flag: strconv.ParseBool: parsing "{value}": '
                     "invalid syntax")


def _is_bool(action: argparse.Action) -> bool:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return True
    return action.nargs == "?" and action.const in (True, "true")  # a flag declared "-p[=BOOL]"


def shown(action: argparse.Action) -> str:
    """The flag as pflag names it in errors: ``-q, --quiet`` or ``--rm``."""
    short = [o for o in action.option_strings if len(o) == 2 and o[1] != "-"]
    long = [o for o in action.option_strings if o.startswith("--")]
    if short and long:
        return f"{short[0]}, {long[0]}"
    return (long or short)[0]


def arity(parser: argparse.ArgumentParser) -> tuple[int, int | None]:
    """(least, most) arguments the declared positionals take; most None: no limit."""
    least, most = 0, 0
    unbounded = False
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        n = action.nargs
        if n is None:
            least, most = least + 1, most + 1
        elif isinstance(n, int):
            least, most = least + n, most + n
        elif n == "?":
            most += 1
        elif n == "+" or (n == argparse.REMAINDER and action.metavar == NEEDS_COMMAND):
            least, unbounded = least + 1, True
        else:  # "*", REMAINDER
            unbounded = True
    return least, None if unbounded else most


def first_remainder(parser: argparse.ArgumentParser) -> str | None:
    """The dest of a command line that is the command's first positional (``unshare [COMMAND]``): argparse
    keeps the ``--`` ``normalise`` puts before the arguments in it, the caller takes it out."""
    for action in parser._actions:
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            return action.dest if action.nargs == argparse.REMAINDER else None
    return None


def _interspersed(parser: argparse.ArgumentParser) -> bool:
    """Flags may follow arguments, except in a command whose last argument is a command line."""
    return not any(a.nargs == argparse.REMAINDER for a in parser._actions if not a.option_strings)


class _Reader(FlagReader):
    """The words of an argparse-declared command; the flags' values as argparse will read them."""

    def __init__(self, parser: argparse.ArgumentParser, args: list[str]) -> None:
        super().__init__(args)
        self.opts = parser._option_string_actions
        self.flags: list[str] = []
        self.overrides: dict[str, object] = {}
        self.help = False

    def find(self, name: str) -> tuple[bool, Callable[[str | None, str], None]] | None:
        action = self.opts.get(name)
        if action is None:
            return None
        return not (_is_bool(action) or action.nargs == 0), lambda value, typed: self.set(action, value, typed)

    def fail(self, message: str) -> NoReturn:
        raise UsageError(message)

    def set(self, action: argparse.Action, value: str | None, typed: str) -> None:
        """``value`` None: the flag alone (a boolean's true); ``typed``: the flag as given (``-e``, ``--env``)."""
        if isinstance(action, argparse._HelpAction):
            self.help = self.help or value is None or parse_bool(value, shown(action))
        elif _is_bool(action):
            on = True if value is None else parse_bool(value, shown(action))
            if isinstance(action, argparse._StoreFalseAction):
                self.overrides[action.dest] = not on
            elif isinstance(action, argparse._StoreTrueAction):
                self.overrides[action.dest] = on
            else:
                text = "true" if on else "false"
                self.overrides[action.dest] = action.type(text) if callable(action.type) else text
        elif action.nargs == 0:
            self.flags.append(typed)
        else:
            assert value is not None
            self.flags.append(f"{typed}={value}")


def normalise(parser: argparse.ArgumentParser, args: list[str]) -> tuple[list[str], dict[str, object]]:
    """``args`` of the command ``parser`` as pflag reads them: (words for argparse: value flags as
    ``--name=value``, then ``--`` and the arguments; the booleans' final values by ``dest``). Raises
    ``HelpRequested``, ``UsageError`` (a flag's error) or ``ArityError``."""
    reader = _Reader(parser, args)
    reader.read(_interspersed(parser))
    if reader.help:
        raise HelpRequested()
    least, most = arity(parser)
    n = len(reader.positionals)
    if n < least or (most is not None and n > most):
        raise ArityError(parser.prog, least, most)
    words = reader.flags + (["--", *reader.positionals] if reader.positionals else [])
    return words, reader.overrides
