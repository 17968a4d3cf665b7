"""Entry point of the ``strata`` command: parses arguments, dispatches, maps errors to exit codes.

Each command group lives in its own module exposing ``register(subparsers)``; a command's handler is
``handler(args, ctx) -> int`` set with ``parser.set_defaults(func=handler)``. Handlers raise
``StrataError``; only this module turns it into ``Error: <message>`` on stderr and an exit code.

Start-up is part of the interface: this module imports nothing heavy, ``--version`` answers before any
parser is built, and the parser (``strata.cli.parser``) loads only the group of the command given.
"""

from __future__ import annotations

import sys

from strata import __version__

TYPE_CHECKING = False  # not typing's: importing typing costs --version a quarter of its time
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any, NoReturn, TextIO

    from strata.engine import Engine

    Handler = Callable[[argparse.Namespace, "Context"], int]

__all__ = ["Context", "main", "run"]

VERSION = f"strata {__version__}"


class Context:
    """What a command handler gets besides its arguments. The store root is kept as given (``root_dir``,
    a ``str``: the listing commands load no pathlib); ``root`` is it as a ``Path``."""

    def __init__(
        self,
        root: str | Path | None,
        out: TextIO | None = None,
        err: TextIO | None = None,
        stdin: Any = None,
        _engine: Engine | None = None,
    ) -> None:
        self.root_dir: str | None = None
        if root is not None:
            from strata.store.root import plain_path

            self.root_dir = plain_path(root)
        self.out: TextIO = sys.stdout if out is None else out
        self.err: TextIO = sys.stderr if err is None else err
        self.stdin: Any = sys.stdin if stdin is None else stdin
        self._engine = _engine

    @property
    def root(self) -> Path | None:
        if self.root_dir is None:
            return None
        from strata.store.root import as_path

        return as_path(self.root_dir)

    def engine(self) -> Engine:
        if self._engine is None:
            import strata.container.usage  # registers what containers use with the store  # noqa: F401
            from strata.engine import Engine

            self._engine = Engine.open(self.root_dir)
        return self._engine

    def store_dir(self) -> str:
        """The store's directory, without opening the store."""
        if self._engine is not None:
            return self._engine.root_dir
        from strata.store.root import default_root_dir

        return self.root_dir or default_root_dir()

    def store_root(self) -> Path:
        """``store_dir()`` as a ``Path``."""
        from strata.store.root import as_path

        return as_path(self.store_dir())

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def __getattr__(name: str) -> Any:
    """``_Parser`` and ``build_parser`` live in ``strata.cli.parser`` (argparse is loaded on demand)."""
    if name in ("_Parser", "build_parser", "GROUPS", "COMMAND_GROUPS"):
        from strata.cli import parser

        return getattr(parser, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _wants_version(args: list[str]) -> bool:
    """``strata [--root DIR] --version``: answered without building a parser, as argparse would."""
    from_root = False
    for arg in args:
        if from_root:
            from_root = False
        elif arg == "--root":
            from_root = True
        elif arg == "--version":
            return True
        elif not arg.startswith("--root="):
            return False
    return False


# read-only commands that print and exit: they run with the cyclic garbage collector off (start-up
# allocates many objects and frees few, so a collection finds nearly nothing: a few percent of the run)
_SHORT_LIVED = frozenset({"images", "ps", "inspect", "history"})
_FAST_EXIT = _SHORT_LIVED | {"build"}  # skip the teardown too (build joins its threads, removes its files)
_BUILD_GC_THRESHOLD = 7000  # allocations between young collections (Python's default: 700)
_PROGRAM = [False]  # run() (the strata program, which ends with os._exit for _FAST_EXIT), not main() in-process


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if _wants_version(args_list):
        print(VERSION)  # argparse's version action, without building any parser
        return 0
    import gc

    was_enabled = gc.isenabled()
    gc.disable()  # while the parser and the command's modules load; kept off for _SHORT_LIVED commands
    try:
        return _main(args_list, was_enabled)
    finally:
        # called in-process (tests, a program): the collector as it was. As the program, a short-lived
        # command leaves it off: turned on now, the first allocation would collect everything loaded
        if was_enabled and argv is not None:
            gc.enable()


def run() -> NoReturn:
    """The ``strata`` program (the console script, ``python -m strata``): ``main()``, then exit.

    A short-lived command that has printed its answer exits without the interpreter's teardown (a
    collection over every object loaded and the clearing of each module: a tenth of ``images``'s run);
    its output is flushed first, and a flush that fails (a closed pipe) takes the ordinary way out.
    Other commands (threads to join, ``atexit`` work, temporary files) exit the ordinary way.
    """
    _PROGRAM[0] = True
    rc = main()
    if _short_lived(sys.argv[1:]):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            sys.exit(rc)
        import os

        os._exit(rc)
    sys.exit(rc)


def _short_lived(args: list[str]) -> bool:
    if _wants_version(args):
        return True
    listing = sys.modules.get("strata.cli.listing")  # not loaded: main() stopped before parsing
    return listing is not None and listing.command_word(args) in _FAST_EXIT


def _main(args_list: list[str], collect: bool) -> int:
    import os  # here: started without site (the console script), --version needs no os

    from strata.cli.listing import command_word, parse_listing
    from strata.errors import StrataError

    args = parse_listing(args_list)  # images, ps, inspect, history: no argparse when the words parse cleanly
    if args is None:
        parsed = _parse(args_list)
        if isinstance(parsed, int):
            return parsed
        args = parsed
    if collect and command_word(args_list) not in _SHORT_LIVED:
        import gc

        gc.enable()
    func: Handler = args.func
    if _PROGRAM[0] and command_word(args_list) == "build":
        _build_program()
    root = args.root or os.environ.get("STRATA_ROOT")
    ctx = Context(root=root or None)
    try:
        if os.geteuid() != 0:  # rootless: store commands run in the user namespace (strata.cli.unshare)
            from strata.cli.unshare import reenter

            reenter(args, command_word(args_list))
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


def _build_program() -> None:
    """The ``build`` program: its stage threads load the step machinery with fewer young collections (a
    collection at import finds next to nothing), and it ends with ``os._exit``: once its watchdog runs, its
    store and container records are left open for the exit to drop, their WAL checkpoints (fsyncs at the
    build's end) left to the watchdog (``store.db.exit_without_close``)."""
    import gc

    from strata.container.records import exit_without_close as records_exit
    from strata.store.db import exit_without_close as db_exit

    gc.set_threshold(_BUILD_GC_THRESHOLD, *gc.get_threshold()[1:])
    records_exit()
    db_exit()


def _parse(args_list: list[str]) -> argparse.Namespace | int:
    """``args_list`` parsed by the argparse parser (Docker's errors, usage and help), or the exit status
    of a command line that is answered while parsing (help, a usage error)."""
    from strata.cli.parser import GroupHelp, build_parser, parse_args
    from strata.errors import StrataError

    try:
        args = parse_args(args_list)
    except GroupHelp as e:  # Docker prints a group's help on stderr
        print(e.text, end="", file=sys.stderr)
        return e.status
    except StrataError as e:
        print(f"Error: {e}" if not str(e).startswith("usage") else str(e), file=sys.stderr)
        return e.exit_code
    if getattr(args, "func", None) is None:
        build_parser(args_list, whole_groups=True).print_help(sys.stderr)
        return 0 if not args_list else 125
    return args
