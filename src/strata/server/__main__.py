"""``python -m strata.server serve|garbage-collect|htpasswd ...``: the registry commands alone."""

from __future__ import annotations

import sys

from strata.cli.main import Context, _Parser
from strata.cli.registry import register
from strata.errors import StrataError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="strata")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    register(sub)
    try:
        args = parser.parse_args(["registry", *(sys.argv[1:] if argv is None else argv)])
        return int(args.func(args, Context(root=None)))
    except StrataError as e:
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
