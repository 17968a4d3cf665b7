"""cli.parser: the narrow parser (only the given command's) parses exactly as the whole one does."""

from __future__ import annotations

import argparse

import pytest

from strata.cli.parser import build_parser
from strata.errors import StrataError

ARGVS = [
    ["images"],
    ["--root", "/tmp/r", "images", "-a", "--digests", "-f", "dangling=true", "--format", "{{.ID}}"],
    ["image", "ls", "-q"],
    ["image", "prune", "-a", "-f", "--filter", "until=1h"],
    ["history", "--no-trunc", "-H=false", "busybox"],
    ["inspect", "--format", "{{.Id}}", "a", "b"],
    ["image", "inspect", "a"],
    ["tag", "a", "b"],
    ["rmi", "-f", "a"],
    ["system", "df", "-v"],
    ["save", "-o", "x.tar", "a"],
    ["ps", "-a", "--no-trunc"],
    ["run", "--rm", "-i", "-t", "--name", "x", "img", "sh", "-c", "true"],
    ["container", "ls", "-a"],
    ["logs", "-f", "x"],
    ["pull", "-q", "busybox"],
    ["manifest", "inspect", "busybox"],
    ["registry", "garbage-collect", "--root", "/tmp/x", "--dry-run"],
]


def _parsed(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, object]:
    return vars(parser.parse_args(argv))


@pytest.mark.parametrize("argv", ARGVS, ids=lambda a: " ".join(a))
def test_the_narrow_parser_parses_as_the_whole_one(argv: list[str]) -> None:
    assert _parsed(build_parser(argv), argv) == _parsed(build_parser(None), argv)


def test_only_the_command_is_built() -> None:
    parser = build_parser(["images"])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == ["images"]


@pytest.mark.parametrize(
    "argv", [["images", "--bogus"], ["rmi"], ["ps", "--nope"], ["image", "ls", "--x"], ["history"]],
    ids=lambda a: " ".join(a),
)
def test_errors_read_as_with_the_whole_parser(argv: list[str]) -> None:
    with pytest.raises(StrataError) as narrow:
        build_parser(argv).parse_args(argv)
    with pytest.raises(StrataError) as whole:
        build_parser(None).parse_args(argv)
    assert (str(narrow.value), narrow.value.exit_code) == (str(whole.value), whole.value.exit_code)


def test_an_unknown_word_gets_every_command() -> None:
    parser = build_parser(["nosuch"])
    with pytest.raises(StrataError) as e:
        parser.parse_args(["nosuch"])
    assert "invalid choice: 'nosuch'" in str(e.value) and "'registry'" in str(e.value)
