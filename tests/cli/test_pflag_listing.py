"""strata.cli.listing (images, ps, inspect, history read without argparse) against the argparse parser.

Every command line the table answers must give the namespace argparse gives; every one argparse refuses
(Docker's errors) must be left to argparse; the everyday forms must take the short way.
"""

from __future__ import annotations

import pytest

from strata.cli import listing
from strata.cli.parser import parse_args
from strata.errors import StrataError

ID = "sha256:" + "ab" * 32

# command lines argparse accepts: the table must answer each with argparse's namespace
ACCEPTED = [
    ["images"], ["images", "-a"], ["images", "-aq"], ["images", "--all", "--quiet", "--digests", "--no-trunc"],
    ["images", "busybox"], ["images", "busybox", "-q"], ["images", "-f", "dangling=true", "--filter=label=a=b"],
    ["images", "-fdangling=false", "-f=reference=x*"], ["images", "--format", "{{.ID}}"], ["images", "--format="],
    ["images", "--format", "-q"], ["images", "-a=false", "--quiet=1", "--digests=F"], ["images", "--", "-x"],
    ["images", "-"], ["--root", "/tmp/x", "images"], ["--root=/tmp/y", "images", "-q"],
    ["--root", "/a", "--root", "/b", "images"], ["--root=", "images"],
    ["ps"], ["ps", "-a"], ["ps", "-aq"], ["ps", "-as", "--no-trunc"], ["ps", "-n", "3"], ["ps", "-n3"], ["ps", "--last=-1"],
    ["ps", "-n=2"], ["ps", "-l"], ["ps", "--latest=true", "--size=false"], ["ps", "--filter", "status=exited", "-f", "name=x"],
    ["ps", "--format", "table {{.ID}}\t{{.Names}}"], ["ps", "--format", "{{json .}}", "-a"], ["ps", "-n", " 4 "],
    ["inspect", "x"], ["inspect", "x", "y", ID], ["inspect", "-f", "{{.Id}}", "x"], ["inspect", "--format={{json .}}", "x"],
    ["inspect", "--type", "image", "x"], ["inspect", "--type=container", "-s", "x"], ["inspect", "x", "-s=false"],
    ["inspect", "-sf", "{{.Id}}", "x"], ["inspect", "-f{{.Id}}", "x"], ["inspect", "--", "-x"],
    ["history", "x"], ["history", "-q", "x"], ["history", "x", "--no-trunc"], ["history", "-H=false", "x"],
    ["history", "--human=0", "x"], ["history", "-H", "x"], ["history", "--human", "x"], ["history", "-Hq", "x"],
    ["history", "--format", "{{.ID}}", "x"], ["history", "--", "x"],
]

# command lines argparse refuses (or answers with help): the table must leave them to argparse
REFUSED = [
    ["images", "a", "b"], ["images", "-x"], ["images", "--bogus"], ["images", "-f"], ["images", "--format"],
    ["images", "-a=maybe"], ["images", "-q="], ["images", "-h"], ["images", "--help"], ["images", "--help=false"],
    ["images", "--root", "x"], ["--root"], ["--root", "-x", "images"], ["--bogus", "images"], ["-h", "images"],
    ["ps", "x"], ["ps", "-n"], ["ps", "-n", "x"], ["ps", "--last=1.5"], ["ps", "-z"], ["ps", "--all=yes"],
    ["inspect"], ["inspect", "-f"], ["inspect", "--type"], ["inspect", "-s=2", "x"],
    ["history"], ["history", "a", "b"], ["history", "-H", "false", "x"], ["history", "--human=no", "x"],
    ["image", "ls"], ["container", "ls"], ["images", "-aH"],
]


def _argparse(argv: list[str]) -> dict[str, object] | None:
    try:
        return vars(parse_args(argv))
    except (StrataError, SystemExit, Exception):
        return None


@pytest.mark.parametrize("argv", ACCEPTED, ids=" ".join)
def test_the_table_reads_a_command_line_as_argparse_does(argv: list[str]) -> None:
    theirs = _argparse(argv)
    assert theirs is not None, "argparse should accept this command line"
    ours = listing.parse_listing(argv)
    assert ours is not None, "the everyday form should take the short way"
    assert vars(ours) == theirs


@pytest.mark.parametrize("argv", REFUSED, ids=" ".join)
def test_what_argparse_refuses_is_left_to_argparse(argv: list[str]) -> None:
    assert listing.parse_listing(argv) is None


def test_the_namespace_behaves_as_argparses() -> None:
    import argparse

    ns = listing.Namespace(a=1, b=[2])
    theirs = argparse.Namespace(a=1, b=[2])
    assert vars(ns) == vars(theirs) and repr(ns) == repr(theirs) and "a" in ns and "c" not in ns
    assert ns == listing.Namespace(b=[2], a=1) and ns != listing.Namespace(a=1)
    with pytest.raises(TypeError):
        hash(ns)


def test_each_listing_flag_is_declared_as_the_parser_declares_it() -> None:
    """The table's flags are the argparse parser's: same names, same kinds (a flag added to one and not
    the other fails here)."""
    from strata.cli.parser import _choices, build_parser

    for word, spec in listing.SPECS.items():
        parser = _choices(build_parser([word]))[word]
        theirs = {o for a in parser._actions for o in a.option_strings} - {"-h", "--help"}
        assert set(spec.flags) == theirs, word
