"""The ``strata`` command line's parser: argparse with Docker's wording for flag errors, built with
only the command group the command word needs (``images`` never loads the container commands)."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from strata import __version__
from strata.errors import StrataError

TYPE_CHECKING = False  # typing's costs a listing command
if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__ = ["COMMAND_GROUPS", "GROUPS", "VERSION", "build_parser", "command_word"]

VERSION = f"strata {__version__}"

# Command-group modules, each with ``register(subparsers)``.
GROUPS = (
    "strata.cli.images",
    "strata.cli.containers",
    "strata.cli.distribution",
    "strata.cli.registry",
    "strata.cli.build",
    "strata.cli.network",
    "strata.cli.unshare",
    "strata.cli.volume",
    "strata.cli.containerio",
)


def _columns() -> int:
    """``shutil.get_terminal_size().columns`` (``$COLUMNS``, else the terminal's, else 80) without
    importing shutil, which loads three compression modules a listing command never uses."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, its default width found as argparse finds it (see ``_columns``);
    argparse makes one for every argument it adds, so this is on every command's path."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, with Docker's wording for flag errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required"):
            # Docker's cobra wording, exit status 1
            raise StrataError(f'"{self.prog}" requires at least 1 argument.\nSee \'{self.prog} --help\'.')
        m = re.match(r"unrecognized arguments: (\S+)", message)
        if m and m.group(1).startswith("-"):
            message = f"unknown flag: {m.group(1)}"
        raise StrataError(f"{message}\nSee '{self.prog} --help'.", exit_code=125)


# The group that defines each top-level command, so one command loads only its own group; any other
# word (run, ps, commit, ...) is a container command. Help and unknown words load every group.
COMMAND_GROUPS = {
    **dict.fromkeys(
        ("images", "image", "tag", "history", "save", "load", "import", "rmi", "inspect", "system"),
        "strata.cli.images",
    ),
    **dict.fromkeys(("login", "logout", "pull", "push", "search", "copy", "manifest"), "strata.cli.distribution"),
    "registry": "strata.cli.registry",
    "build": "strata.cli.build",
    "network": "strata.cli.network",
    "unshare": "strata.cli.unshare",
    "volume": "strata.cli.volume",
    **dict.fromkeys(("cp", "top", "rename", "attach"), "strata.cli.containerio"),
}


def command_word(argv: list[str]) -> str | None:
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--root":
            skip = True
        elif not arg.startswith("-"):
            return arg
        elif arg in ("-h", "--help", "--version"):
            return None
    return None


def _groups_for(argv: list[str] | None) -> tuple[str, ...]:
    word = command_word(argv) if argv is not None else None
    if word is None:
        return GROUPS
    return (COMMAND_GROUPS.get(word, "strata.cli.containers"),)


def build_parser(argv: list[str] | None = None, *, whole_groups: bool = False) -> argparse.ArgumentParser:
    """The parser for ``argv``: with a known command word, only that command's parser is built (its
    group's other commands are registered on stand-ins) unless ``whole_groups``; help and unknown
    words get every group, the command word's own first."""
    parser = _Parser(prog="strata", description="A daemonless, Docker-compatible image engine")
    parser.add_argument("--root", help="store root (default /var/lib/strata, or $STRATA_ROOT)")
    parser.add_argument("--version", action="version", version=VERSION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    word = command_word(argv) if argv is not None else None
    groups = _groups_for(argv)
    if word is not None and groups != GROUPS and not whole_groups and not {"-h", "--help"} & set(argv or []):
        _load_groups(_OnlyCommand(sub, word), groups)
        if word in sub.choices:
            return parser
    _load_groups(sub, groups)
    if word is not None and word not in sub.choices:
        _load_groups(sub, tuple(g for g in GROUPS if g not in groups))
    return parser


def _load_groups(sub: Any, groups: tuple[str, ...]) -> None:
    for name in groups:
        importlib.import_module(name).register(sub)


class _StandIn:
    """A parser or sub-parser action nobody will use: every call is accepted and does nothing."""

    def __getattr__(self, name: str) -> Any:
        return self._ignore

    def _ignore(self, *args: Any, **kwargs: Any) -> _StandIn:
        return self


class _OnlyCommand:
    """The top-level sub-parser action, building a real parser only for ``word`` (building all of a
    group's parsers costs more than running a listing command)."""

    def __init__(self, sub: Any, word: str) -> None:
        self._sub, self._word = sub, word

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name == self._word or self._word in kwargs.get("aliases", ()):
            return self._sub.add_parser(name, **kwargs)
        return _StandIn()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sub, name)
