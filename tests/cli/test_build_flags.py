"""``strata build``'s words read by the flag table (strata.cli.listing, no argparse) against argparse.

Every command line the table answers must give the namespace argparse gives; every one argparse refuses
(Docker's errors) or answers with help must be left to argparse; and the token reader is one: the table
and strata.cli.pflag both read with strata.cli.flagread.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from strata.cli import flagread, listing, pflag
from strata.cli.parser import parse_args
from strata.errors import StrataError

SRC = Path(__file__).resolve().parents[2] / "src"

ACCEPTED = [
    ["build", "."], ["build", "-"], ["build", "-t", "a:1", "."], ["build", "-t", "a:1", "--tag=b", "-tc", "."],
    ["build", ".", "-q"], ["build", "-q=false", "."], ["build", "--quiet=1", "."], ["build", "-qt", "x", "."],
    ["build", "-f", "-", "."], ["build", "-f-", "."], ["build", "--file", "sub/Dockerfile", "ctx"],
    ["build", "--build-arg", "A=1", "--build-arg", "B", "--build-arg=C=", "."], ["build", "--target", "t", "."],
    ["build", "--no-cache", "--pull", "."], ["build", "--no-cache=false", "--pull=T", "."],
    ["build", "--label", "a=b", "--label=c", "."], ["build", "--iidfile", "/tmp/x", "."],
    ["build", "--network", "none", "."], ["build", "--network=host", "."], ["build", "--platform", "linux/amd64", "."],
    ["build", "--secret", "id=a,src=b", "--ssh", "default", "."], ["build", "--progress", "plain", "."],
    ["build", "--progress=tty", "."], ["build", "--rm", "."], ["build", "--rm=false", "."], ["build", "--force-rm", "."],
    ["build", "--", "-"], ["build", "-t", "-x", "."], ["--root", "/tmp/r", "build", "-q", "."],
    ["build", "http://example.invalid/ctx.tar"],
]

REFUSED = [
    ["build"], ["build", "a", "b"], ["build", "-x", "."], ["build", "--bogus", "."], ["build", "-t"],
    ["build", ".", "-f"], ["build", "--no-cache=maybe", "."], ["build", "-q=", "."], ["build", "-h"],
    ["build", "--help", "."], ["build", "--rm", "false", "."], ["image", "build", "."], ["builder", "build", "."],
    ["build", "--tag"],
]


def _argparse(argv: list[str]) -> dict[str, object] | None:
    try:
        return vars(parse_args(argv))
    except (StrataError, SystemExit, Exception):
        return None


@pytest.mark.parametrize("argv", ACCEPTED, ids=" ".join)
def test_the_table_reads_build_as_argparse_does(argv: list[str]) -> None:
    theirs = _argparse(argv)
    assert theirs is not None, "argparse should accept this command line"
    ours = listing.parse_listing(argv)
    assert ours is not None, "the everyday form should take the short way"
    assert vars(ours) == theirs


@pytest.mark.parametrize("argv", REFUSED, ids=" ".join)
def test_what_the_table_cannot_read_goes_to_argparse(argv: list[str]) -> None:
    assert listing.parse_listing(argv) is None


def test_one_token_reader() -> None:
    assert issubclass(listing._Reader, flagread.FlagReader)
    assert issubclass(pflag._Reader, flagread.FlagReader)
    for cls in (listing._Reader, pflag._Reader):
        own = {"long", "shorts", "read", "next_value"} & set(vars(cls))
        assert own == set(), f"{cls.__module__} reads words itself again: {sorted(own)}"


def test_a_bad_build_flag_still_gets_dockers_error(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC), STRATA_ROOT=str(tmp_path / "store"))
    res = subprocess.run([sys.executable, "-m", "strata", "build", "--bogus", "."], capture_output=True, text=True,
                         env=env, timeout=120)  # fmt: skip
    assert res.returncode == 125
    assert res.stderr == "Error: unknown flag: --bogus\nSee 'strata build --help'.\n", res.stderr
    res = subprocess.run([sys.executable, "-m", "strata", "build"], capture_output=True, text=True, env=env,
                         timeout=120)  # fmt: skip
    assert res.returncode == 1
    assert res.stderr.startswith('Error: "strata build" requires exactly 1 argument.\n'), res.stderr
