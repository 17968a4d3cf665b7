"""The listing commands (``images``, ``ps``, ``inspect``, ``history``) and ``build`` read without argparse.

Building argparse parsers (and importing argparse, gettext and locale) costs a listing command about a
tenth of its run, and a fully cached ``build`` as much. Each of these commands declares its flags here,
as a table, and its words are read by ``strata.cli.flagread``, the reader ``strata.cli.pflag`` uses too
(Go's pflag: booleans take ``=VALUE`` only, a value flag takes the next word even when it starts with
``-``, short flags combine, ``--`` ends the flags). The table gives the same namespace argparse gives
(``tests/cli/test_pflag_listing.py`` and ``tests/cli/test_build_flags.py`` compare the two).

Only a command line that parses cleanly is answered here. Anything else (help, an unknown or malformed
flag, a wrong number of arguments, a group word such as ``image ls``) returns None and goes the long way,
through ``strata.cli.parser``, whose errors, usage and help are Docker's: one place words them.
"""

from __future__ import annotations

from strata.cli.flagread import FALSE, TRUE, FlagReader

TYPE_CHECKING = False  # typing's import costs a listing command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    from strata.cli.flagread import Found

    Handler = Callable[..., int]

__all__ = ["SPECS", "Namespace", "Spec", "command_word", "parse_listing", "word_index"]


# a flag's kind: a boolean (store_true), a "-H[=BOOL]" flag kept as the text "true"/"false", a value,
# an int value, a repeated value (append)
BOOL, BOOL_TEXT, VALUE, INT, APPEND = "bool", "booltext", "value", "int", "append"


if TYPE_CHECKING:  # the type checker sees argparse's: handlers take either
    from argparse import Namespace
else:

    class Namespace:
        """argparse.Namespace's behaviour that handlers use: attributes, ``vars()``, equality, repr."""

        def __init__(self, **kwargs: object) -> None:
            self.__dict__.update(kwargs)

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Namespace) and vars(self) == vars(other)

        __hash__ = None

        def __contains__(self, key: str) -> bool:
            return key in self.__dict__

        def __repr__(self) -> str:
            return "Namespace(" + ", ".join(f"{k}={v!r}" for k, v in sorted(self.__dict__.items())) + ")"


class Spec:
    """One command: its handler (a function importing and returning it), flags ((short, long, dest, kind,
    default)...), the positional's dest and its (least, most) count (most None: no limit; a count of at
    most one gives the value, else a list), and defaults argparse sets besides the flags'."""

    def __init__(self, handler: Callable[[], Handler], flags: tuple[tuple[str, str, str, str, object], ...],
                 positional: str, counts: tuple[int, int | None], **extra: object) -> None:
        self.handler, self.positional, self.counts, self.extra = handler, positional, counts, extra
        self.flags = {f"-{s}": f for f in flags for s in (f[0],) if s}
        self.flags.update({f"--{f[1]}": f for f in flags})
        self.defaults = {f[2]: f[4] for f in flags}


def _images() -> Handler:
    from strata.cli.images import cmd_images

    return cmd_images


def _ps() -> Handler:
    from strata.cli.containers import _cmd_ps

    return _cmd_ps


def _inspect() -> Handler:
    from strata.cli.images import cmd_inspect

    return cmd_inspect


def _history() -> Handler:
    from strata.cli.images import cmd_history

    return cmd_history


def _build() -> Handler:
    from strata.cli.build import cmd_build

    return cmd_build


_FORMAT = ("", "format", "format", VALUE, None)
_NO_TRUNC = ("", "no-trunc", "no_trunc", BOOL, False)
_QUIET = ("q", "quiet", "quiet", BOOL, False)
# build's flags for its step containers and the ones it only accepts (strata.cli.build reads them)
_BUILD_HOST: tuple[tuple[str, str, str, str, object], ...] = (
    *((s, f, f.replace("-", "_"), k, [] if k == APPEND else None) for s, f, k in (
        ("", "add-host", APPEND), ("", "cache-from", APPEND), ("", "security-opt", APPEND), ("", "ulimit", APPEND),
        ("", "cgroup-parent", VALUE), ("", "cpu-period", VALUE), ("", "cpu-quota", VALUE), ("", "cpuset-cpus", VALUE),
        ("", "cpuset-mems", VALUE), ("", "isolation", VALUE), ("", "memory-swap", VALUE), ("", "shm-size", VALUE),
        ("c", "cpu-shares", VALUE), ("m", "memory", VALUE), ("", "squash", BOOL_TEXT))),
    ("", "compress", "compress", BOOL, False), ("", "disable-content-trust", "disable_content_trust", BOOL_TEXT, "true"))
SPECS = {
    "images": Spec(_images,
                   (("a", "all", "all", BOOL, False), _QUIET, ("", "digests", "digests", BOOL, False), _NO_TRUNC,
                    ("f", "filter", "filter", APPEND, []), _FORMAT), "reference", (0, 1)),
    "ps": Spec(_ps,
               (("a", "all", "all", BOOL, False), _QUIET, ("s", "size", "size", BOOL, False),
                ("n", "last", "last", INT, None), ("l", "latest", "latest", BOOL, False), _NO_TRUNC,
                ("f", "filter", "filter", APPEND, []), _FORMAT), "", (0, 0)),
    "inspect": Spec(_inspect,
                    (("f", "format", "format", VALUE, None), ("", "type", "type", VALUE, ""),
                     ("s", "size", "size", BOOL, False)), "names", (1, None)),
    "history": Spec(_history,
                    (("H", "human", "human", BOOL_TEXT, "true"), _QUIET, _NO_TRUNC, _FORMAT), "image", (1, 1)),
    # strata.cli.build.register declares the same flags for argparse (help, errors)
    "build": Spec(_build,
                  (("t", "tag", "tag", APPEND, []), ("f", "file", "file", VALUE, None),
                   ("", "build-arg", "build_arg", APPEND, []), ("", "target", "target", VALUE, None),
                   ("", "no-cache", "no_cache", BOOL, False), ("", "pull", "pull", BOOL, False),
                   ("", "label", "label", APPEND, []), _QUIET, ("", "iidfile", "iidfile", VALUE, None),
                   ("", "network", "network", VALUE, "default"), ("", "platform", "platform", VALUE, None),
                   ("", "secret", "secret", APPEND, []), ("", "ssh", "ssh", APPEND, []),
                   ("", "progress", "progress", VALUE, "auto"), ("", "rm", "rm", BOOL_TEXT, "true"),
                   ("", "force-rm", "force_rm", BOOL, False), ("o", "output", "output", APPEND, []),
                   ("", "stream", "stream", BOOL, False), *_BUILD_HOST), "path", (1, 1)),
}


class _Refused(Exception):
    """Not a clean command line for the table: the caller goes the long way (argparse words the error)."""


def word_index(argv: list[str]) -> int | None:
    """Where the command word is in ``argv`` (after the program's ``--root DIR``), None for none."""
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--root":
            skip = True
        elif not arg.startswith("-"):
            return i
        elif arg in ("-h", "--help", "--version"):
            return None
    return None


def command_word(argv: list[str]) -> str | None:
    i = word_index(argv)
    return None if i is None else argv[i]


def _root(words: list[str]) -> str | None:
    """The program's flags before the command word: ``--root DIR`` / ``--root=DIR`` only (last wins)."""
    root = None
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--root="):
            root = word[len("--root="):]
        elif word == "--root" and i + 1 < len(words) and not words[i + 1].startswith("-"):
            root = words[i + 1]
            i += 1
        else:
            raise _Refused
        i += 1
    return root


def _bool(value: str | None) -> bool:
    if value is None or value in TRUE:
        return True
    if value in FALSE:
        return False
    raise _Refused


class _Reader(FlagReader):
    """A command's words read with ``strata.cli.flagread`` into a namespace dict; a bad word refuses."""

    def __init__(self, spec: Spec, args: list[str]) -> None:
        super().__init__(args)
        self.spec = spec
        self.values: dict[str, object] = {k: (list(v) if isinstance(v, list) else v) for k, v in spec.defaults.items()}

    def find(self, name: str) -> Found | None:
        flag = self.spec.flags.get(name)
        if flag is None:
            return None
        return flag[3] not in (BOOL, BOOL_TEXT), lambda value, typed: self.set(flag, value)

    def fail(self, message: str) -> NoReturn:
        raise _Refused

    def set(self, flag: tuple[str, str, str, str, object], value: str | None) -> None:
        kind, dest = flag[3], flag[2]
        if kind == BOOL:
            self.values[dest] = _bool(value)
        elif kind == BOOL_TEXT:
            self.values[dest] = "true" if _bool(value) else "false"
        elif kind == APPEND:
            assert value is not None
            self.values[dest] = [*self.values[dest], value]  # type: ignore[misc]
        else:
            assert value is not None
            self.values[dest] = _int(value) if kind == INT else value


def _int(text: str) -> int:
    """argparse's ``type=int``; what int() refuses goes the long way (pflag's error)."""
    try:
        return int(text)
    except ValueError:
        raise _Refused from None


def _positionals(spec: Spec, given: list[str]) -> dict[str, object]:
    least, most = spec.counts
    if len(given) < least or (most is not None and len(given) > most):
        raise _Refused
    if not spec.positional:
        return {}
    if most == 1:
        return {spec.positional: given[0] if given else None}
    return {spec.positional: list(given)}


def parse_listing(argv: list[str]) -> Namespace | None:
    """``argv`` of a listing command as the namespace argparse would give it (``func`` its handler), or
    None when ``argv`` is not a cleanly parsed listing command."""
    i = word_index(argv)
    spec = SPECS.get(argv[i]) if i is not None else None
    if spec is None or i is None or "-h" in argv or "--help" in argv:
        return None
    try:
        root = _root(argv[:i])
        reader = _Reader(spec, argv[i + 1:])
        reader.read()
        values = {**reader.values, **_positionals(spec, reader.positionals)}
    except _Refused:
        return None
    return Namespace(root=root, command=argv[i], **values, **spec.extra, func=spec.handler())
