"""cli.parser: the narrow parser (only the given command's) parses exactly as the whole one does."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from strata.cli.parser import GROUP_WORDS, GroupHelp, _choices, build_parser, parse_args, resolve
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
    assert "registry" in _choices(parser) and "images" in _choices(parser)
    with pytest.raises(GroupHelp) as e:
        parser.parse_args(["nosuch"])
    assert (e.value.text, e.value.status) == ("strata: 'nosuch' is not a strata command.\nSee 'strata --help'\n", 1)


@pytest.mark.parametrize(("argv", "words", "shown"), [
    (["image", "ls", "-q"], ["images", "-q"], "image ls"),
    (["image", "list"], ["images"], "image ls"),
    (["--root", "/r", "image", "rm", "x"], ["--root", "/r", "rmi", "x"], "image rm"),
    (["image", "remove", "x"], ["rmi", "x"], "image rm"),
    (["container", "ps", "-a"], ["ps", "-a"], "container ls"),
    (["container", "run", "--rm", "img"], ["run", "--rm", "img"], "container run"),
    (["container", "cp", "c:/a", "b"], ["cp", "c:/a", "b"], "container cp"),  # whichever module defines cp
    (["image", "prune", "-a"], ["image", "prune", "-a"], None),  # the group's own command
    (["container", "inspect", "x"], ["container", "inspect", "x"], None),
    (["images", "ls"], ["images", "ls"], None),
    (["system", "info"], ["info"], "system info"),
])
def test_group_words_resolve_to_the_command(argv: list[str], words: list[str], shown: str | None) -> None:
    assert resolve(argv) == (words, shown)


def test_every_container_and_image_word_of_docker_is_mapped() -> None:
    """Docker 20.10's ``container``/``image`` commands are each the group's own or mapped to a top-level one."""
    from strata.cli.helptext import COMMANDS

    for group, own in (("container", {"inspect", "prune"}), ("image", {"inspect", "prune"})):
        for name, *_ in COMMANDS[group][4]:
            aliases = COMMANDS[f"{group} {name}"][2] or (name,)
            assert name in own or all(a in GROUP_WORDS[group] for a in aliases), (group, name)


def test_the_alias_prints_dockers_command_path() -> None:
    with pytest.raises(StrataError) as e:
        parse_args(["container", "list", "x"])
    assert str(e.value).startswith('"strata container ls" accepts no arguments.\nSee \'strata container ls --help\'.')


def test_help_tables_stay_off_the_ordinary_path(tmp_path: Path) -> None:
    """A command that parses loads neither the help facts nor their layout; an arity error does."""
    code = ("import sys\nfrom strata.cli.parser import parse_args\n"
            "try:\n    parse_args(sys.argv[1:])\nexcept Exception:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('strata.cli.help')))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}

    def loaded(*argv: str) -> str:
        return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env,
                              check=True).stdout.strip()

    assert loaded("images", "-q=true") == loaded("run", "-itd", "img") == "[]"
    assert loaded("images", "a", "b") == "['strata.cli.helpformat', 'strata.cli.helptext']"


def test_a_group_word_without_its_command_falls_back_to_the_group() -> None:
    """``container bogus`` (a word no module defines): the group answers (its help, exit 1)."""
    with pytest.raises(GroupHelp) as e:
        parse_args(["container", "bogus", "a", "b"])
    assert e.value.status == 1 and "Usage:  strata container COMMAND" in e.value.text


def test_the_program_page_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """``strata --help`` in ``docker --help``'s layout: groups under Management Commands, each command once."""
    with pytest.raises(SystemExit) as e:
        parse_args(["--help"])
    page = capsys.readouterr().out
    assert e.value.code == 0 and page.startswith("\nUsage:  strata [OPTIONS] COMMAND\n")
    groups, _, commands = page.partition("\nManagement Commands:\n")[2].partition("\nCommands:\n")
    listed = [line.split()[0] for line in (groups + "\n" + commands).split("\n") if line.startswith("  ")]
    assert sorted(listed) == sorted(_choices(build_parser(None)))
    assert "  manifest    Manage Docker image manifests and manifest lists\n" in groups
    assert "  ps          List containers\n" in commands
