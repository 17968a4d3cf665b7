"""The ``strata`` command line's parser: argparse with Docker's wording for flag errors, built with
only the command group the command word needs (``images`` never loads the container commands)."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from strata import __version__
from strata.cli.listing import command_word, word_index
from strata.errors import StrataError, UsageError

TYPE_CHECKING = False  # typing's costs a listing command
if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__ = ["COMMAND_GROUPS", "GROUPS", "GROUP_WORDS", "VERSION", "GroupHelp", "build_parser", "command_word", "parse_args",
           "resolve"]

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
    "strata.cli.system",
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
    """argparse that reads a command's words as Docker's flag parser does (``strata.cli.pflag``), raises
    instead of exiting, and words errors, usage and help as Docker 20.10."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs.setdefault("allow_abbrev", False)  # pflag never abbreviates a flag
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        words = list(sys.argv[1:] if args is None else args)
        if " " not in self.prog:  # the program's own flags, then the command word
            return super().parse_known_args(words, namespace)
        if self._subparsers is not None:
            _check_group_word(self, words)
            return super().parse_known_args(words, namespace)
        from strata.cli import pflag

        try:
            words, overrides = pflag.normalise(self, words)
        except pflag.HelpRequested:
            self.print_help()
            self.exit()
        except pflag.ArityError as e:
            from strata.cli.helpformat import usage_error

            raise StrataError(usage_error(self.prog, str(e), _short_of(self)), exit_code=1) from None
        except StrataError as e:
            raise UsageError(f"{e}\nSee '{self.prog} --help'.") from None
        ns, extra = super().parse_known_args(words, namespace)
        for dest, value in overrides.items():
            setattr(ns, dest, value)
        line = pflag.first_remainder(self)
        value = getattr(ns, line, None) if line is not None else None
        if isinstance(value, list) and value[:1] == ["--"]:
            setattr(ns, str(line), value[1:])
        return ns, extra

    def format_help(self) -> str:
        from strata.cli import helpformat

        if " " not in self.prog:
            return helpformat.root_page(build_parser(None))
        group = self._subparsers is not None
        page = helpformat.help_page(self, _group_commands(self) if group else None)
        return super().format_help() if page is None else page

    def error(self, message: str) -> NoReturn:
        word = re.match(r"argument COMMAND: invalid choice: '(.*?)' \(choose from", message)
        if word and " " not in self.prog:  # cobra's words for a command the program does not have
            raise GroupHelp(f"{self.prog}: '{word.group(1)}' is not a {self.prog} command.\n"
                            f"See '{self.prog} --help'\n", 1)
        if message.startswith("the following arguments are required"):
            # Docker's cobra wording, exit status 1
            raise StrataError(f'"{self.prog}" requires at least 1 argument.\nSee \'{self.prog} --help\'.')
        m = re.match(r"unrecognized arguments: (\S+)", message)
        if m and m.group(1).startswith("-"):
            message = f"unknown flag: {m.group(1)}"
        m = re.match(r"argument (\S+): invalid (\w+) value: '(.*)'$", message, re.S)
        if m:
            message = _invalid_value(self, m.group(1), m.group(2), m.group(3))
        raise UsageError(f"{message}\nSee '{self.prog} --help'.")


def _invalid_value(parser: argparse.ArgumentParser, names: str, kind: str, value: str) -> str:
    """pflag's sentence for a value its type refuses (``-t x`` for an int flag)."""
    from strata.cli.pflag import shown

    action = next((a for a in parser._actions if "/".join(a.option_strings) == names), None)
    flag = shown(action) if action is not None else names
    go = {"int": "strconv.ParseInt", "float": "strconv.ParseFloat"}.get(kind)
    why = f'{go}: parsing "{value}": invalid syntax' if go else f"invalid {kind} value"
    return f'invalid argument "{value}" for "{flag}" flag: {why}'


class GroupHelp(Exception):
    """Text Docker prints on stderr as it is (no ``Error:``): a command group's help when given no command
    (exit status 0) or one it does not have (1); the program's answer to a command it does not have (1)."""

    def __init__(self, text: str, status: int) -> None:
        super().__init__(text)
        self.text, self.status = text, status


def _check_group_word(group: argparse.ArgumentParser, words: list[str]) -> None:
    """A group takes a command word, or -h/--help; Docker answers anything else with the group's help."""
    first = words[0] if words else ""
    if first in _choices(group) or first in ("-h", "--help"):
        return
    if first.startswith("--"):
        flag = f"unknown flag: {first.partition('=')[0]}"
    elif first.startswith("-") and first != "-":
        flag = f"unknown shorthand flag: '{first[1]}' in {first}"
    else:
        raise GroupHelp(group.format_help(), 1 if words else 0)
    raise UsageError(f"{flag}\nSee '{group.prog} --help'.\n{group.format_help()}")


def _choices(parser: argparse.ArgumentParser) -> dict[str, Any]:
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    return dict(sub.choices) if sub is not None else {}


def _group_commands(group: argparse.ArgumentParser) -> list[str]:
    """The words a group (``strata image``) takes: its own commands and the top-level ones it names."""
    name = group.prog.split(" ", 1)[1]
    top = _choices(build_parser(None))
    own = _choices(top[name]) if name in top else _choices(group)
    return sorted({*own, *(w for w, target in GROUP_WORDS.get(name, {}).items() if target in top)})


def _short_of(parser: argparse.ArgumentParser) -> str:
    return parser.description or ""


# The group that defines each top-level command, so one command loads only its own group; any other
# word (run, ps, commit, ...) is a container command. Help and unknown words load every group.
COMMAND_GROUPS = {
    **dict.fromkeys(
        ("images", "image", "tag", "history", "save", "load", "import", "rmi", "inspect"),
        "strata.cli.images",
    ),
    **dict.fromkeys(("login", "logout", "pull", "push", "search", "copy", "manifest"), "strata.cli.distribution"),
    "registry": "strata.cli.registry",
    "build": "strata.cli.build",
    "network": "strata.cli.network",
    "unshare": "strata.cli.unshare",
    "volume": "strata.cli.volume",
    **dict.fromkeys(("system", "info", "version", "events"), "strata.cli.system"),
    **dict.fromkeys(("cp", "top", "rename", "attach"), "strata.cli.containerio"),
}


# ``strata image X`` / ``strata container X``: the words Docker's groups take that are top-level commands,
# mapped here, and only here, to that command (``image ls`` is ``images``): a command added at the top
# level gets its group word by a line in this table. A group's other words are its own (``image prune``).
_SAME = ("build", "history", "import", "load", "pull", "push", "save", "tag")
_CONTAINER = ("attach", "commit", "cp", "create", "diff", "exec", "export", "kill", "logs", "pause", "port",
              "rename", "restart", "rm", "run", "start", "stats", "stop", "top", "unpause", "update", "wait")
GROUP_WORDS: dict[str, dict[str, str]] = {
    "image": {**{w: w for w in _SAME}, "ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "rmi": "rmi"},
    "container": {**{w: w for w in _CONTAINER}, "ls": "ps", "list": "ps", "ps": "ps", "remove": "rm"},
    "system": {"events": "events", "info": "info"},
}
# the name Docker prints for a command typed by one of its aliases (``"docker container ls" accepts ...``)
_CANONICAL = {"list": "ls", "ps": "ls", "remove": "rm", "rmi": "rm"}


_word_index = word_index  # strata.cli.listing's: the command word found without argparse


def resolve(argv: list[str]) -> tuple[list[str], str | None]:
    """``argv`` with a group's word for a top-level command replaced by that command (``image ls -q`` →
    ``images -q``), and the command path Docker shows for it (``image ls``), else None."""
    i = _word_index(argv)
    if i is None or i + 1 >= len(argv):
        return argv, None
    group, word = argv[i], argv[i + 1]
    target = GROUP_WORDS.get(group, {}).get(word)
    if target is None:
        return argv, None
    return [*argv[:i], target, *argv[i + 2:]], f"{group} {_CANONICAL.get(word, word)}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed as Docker's command line takes it (group words resolved, flags read as pflag)."""
    words, shown = resolve(argv)
    parser = build_parser(words)
    if shown is not None:
        command = _choices(parser).get(words[_word_index(words) or 0])
        if command is None:  # no such top-level command (yet): the group's own word, if it has one
            words, parser = argv, build_parser(argv)
        else:
            command.prog = f"{parser.prog} {shown}"
    return parser.parse_args(words)


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
    parser.add_argument("--version", action="version", version=VERSION, help="Print version information and quit")
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
