"""Entry point of the ``strata`` command: parses arguments, dispatches, maps errors to exit codes.

Each command group lives in its own module exposing ``register(subparsers)``; a command's handler is
``handler(args, ctx) -> int`` set with ``parser.set_defaults(func=handler)``. Handlers raise
``StrataError``; only this module turns it into ``Error: <message>`` on stderr and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from strata.errors import StrataError

if TYPE_CHECKING:
    from strata.engine import Engine

__all__ = ["Context", "main"]

# Command-group modules; a module missing during development is skipped.
GROUPS = (
    "strata.cli.images",
    "strata.cli.containers",
    "strata.cli.distribution",
    "strata.cli.registry",
    "strata.cli.network",
)


@dataclass
class Context:
    """What a command handler gets besides its arguments."""

    root: Path | None
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: Any = field(default_factory=lambda: sys.stdin)
    _engine: Engine | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            from strata.engine import Engine

            self._engine = Engine.open(self.root)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


Handler = Callable[[argparse.Namespace, Context], int]


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, with Docker's wording for flag errors."""

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
    "network": "strata.cli.network",
}


def _command_word(argv: list[str]) -> str | None:
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
    word = _command_word(argv) if argv is not None else None
    if word is None:
        return GROUPS
    group = COMMAND_GROUPS.get(word, "strata.cli.containers")
    return (group,) if word != "inspect" else (group, "strata.cli.containers")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="strata", description="A daemonless, Docker-compatible image engine")
    parser.add_argument("--root", help="store root (default /var/lib/strata, or $STRATA_ROOT)")
    parser.add_argument("--version", action="version", version="strata 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    groups = _groups_for(argv)
    loaded = _load_groups(sub, groups)
    if argv is not None and groups != GROUPS and _command_word(argv) not in sub.choices:
        _load_groups(sub, tuple(g for g in GROUPS if g not in loaded))
    return parser


def _load_groups(sub: Any, groups: tuple[str, ...]) -> list[str]:
    loaded = []
    for name in groups:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        module.register(sub)
        loaded.append(name)
    return loaded


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)
    except StrataError as e:
        print(f"Error: {e}" if not str(e).startswith("usage") else str(e), file=sys.stderr)
        return e.exit_code
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 0 if not args_list else 125
    root = args.root or os.environ.get("STRATA_ROOT")
    ctx = Context(root=Path(root) if root else None)
    try:
        return func(args, ctx)
    except StrataError as e:
        sys.stdout.flush()
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        return 141
    except OSError as e:
        # an operating-system failure no layer turned into a StrataError: say it plainly, no traceback
        sys.stdout.flush()
        where = f"{e.filename}: " if e.filename else ""
        print(f"Error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    finally:
        ctx.close()
