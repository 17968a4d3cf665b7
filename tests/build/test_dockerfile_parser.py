"""The Dockerfile parser, Docker's word expansion and .dockerignore rules (no peers needed)."""

from __future__ import annotations

import pytest

from strata.build.ignore import IgnoreRules, read_patterns
from strata.dockerfile import DockerfileError, ParseError, expand, parse


def test_continuations_comments_and_originals() -> None:
    df = parse("FROM a\n# a comment\nRUN echo hi && \\\n    # inside\n\n    echo there\nCMD [\"sh\"]\n")
    assert [i.cmd for i in df.instructions] == ["from", "run", "cmd"]
    run = df.instructions[1]
    assert run.original == "RUN echo hi &&     echo there"  # Docker's Step line: escape removed, blanks kept
    assert run.line == 3 and not run.json
    cmd = df.instructions[2]
    assert cmd.json and cmd.args == ["sh"]


def test_escape_directive() -> None:
    df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo x\n")
    assert df.escape == "`"
    assert df.instructions[1].original == "RUN dir c:\\   && echo x"
    with pytest.raises(ParseError, match="invalid ESCAPE"):
        parse("# escape=x\nFROM a\n")
    # a directive after the first instruction is a comment
    assert parse("FROM a\n# escape=`\nRUN x \\\n y\n").escape == "\\"


def test_unknown_instruction_is_dockers_error() -> None:
    with pytest.raises(ParseError) as e:
        parse("FROM a\n\nRUNN x\n")
    assert str(e.value) == "dockerfile parse error line 3: unknown instruction: RUNN"


def test_name_value_errors_are_the_ast_parsers() -> None:
    """Docker 20.10 reads ENV/LABEL pairs while it builds the AST: its error names no line."""
    for text, error in (("ENV A", "ENV must have two arguments"),
                        ("LABEL a=b c", "Syntax error - can't find = in \"c\". Must be of the form: name=value")):  # fmt: skip
        with pytest.raises(DockerfileError) as e:
            parse(f"FROM a\n{text}\n")
        assert str(e.value) == f"failed to parse Dockerfile: {error}"


def test_flags_and_forms() -> None:
    df = parse('FROM a AS b\nCOPY --from=b --chown=1:2 ["x y", "/z"]\nHEALTHCHECK --interval=5s CMD true\n')
    copy = df.instructions[1]
    assert copy.flag("from") == "b" and copy.flag("chown") == "1:2" and copy.flag("chmod") is None
    assert copy.json and copy.args == ["x y", "/z"]
    assert df.instructions[0].args == ["a", "AS", "b"]
    assert df.instructions[2].args == ["CMD", "true"]


def test_heredocs() -> None:
    df = parse("FROM a\nRUN <<EOF\necho one\necho two\nEOF\nRUN cat <<-'X' > /f\n\tbody $A\n\tX\nCMD x\n")
    run1, run2 = df.instructions[1], df.instructions[2]
    assert run1.heredocs[0].content == "echo one\necho two\n" and run1.heredocs[0].expand
    assert run2.heredocs[0].content == "body $A\n" and not run2.heredocs[0].expand
    assert df.instructions[3].cmd == "cmd"
    with pytest.raises(ParseError, match="unterminated heredoc"):
        parse("FROM a\nRUN <<EOF\nno end\n")


def test_onbuild_sub_instruction() -> None:
    ins = parse("FROM a\nONBUILD RUN echo x\n").instructions[1]
    assert ins.sub is not None and ins.sub.cmd == "run" and ins.args == ["run"]


@pytest.mark.parametrize(
    ("word", "want"),
    [
        ("$A", "1"), ("${A}x", "1x"), ("${B:-def}", "def"), ("${A:-def}", "1"), ("${A:+alt}", "alt"),
        ("${B:+alt}", ""), ("'$A'", "$A"), ('"$A b"', "1 b"), ("\\$A", "$A"), ("$", "$"), ("a\\ b", "a b"),
    ],
)  # fmt: skip
def test_expansion(word: str, want: str) -> None:
    assert expand(word, ["A=1"]) == want


def test_expansion_errors() -> None:
    with pytest.raises(DockerfileError, match="missing '}'"):
        expand("${", [])
    with pytest.raises(DockerfileError, match="B: must be set"):
        expand("${B:?must be set}", [])


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        (["*.md"], "README.md", True),
        (["*.md"], "docs/README.md", False),
        (["**/*.md"], "docs/a/README.md", True),
        (["**/*.md", "!docs/keep.md"], "docs/keep.md", False),
        (["docs"], "docs/a/b.txt", True),  # a matched parent directory excludes what is below it
        (["/secret"], "secret", True),
        (["./a/../b"], "b", True),
        (["tmp?"], "tmp1", True),
        (["tmp?"], "tmp12", False),
        (["*", "!src"], "src/x.py", False),
        (["[a-c].txt"], "b.txt", True),
    ],
)
def test_dockerignore(patterns: list[str], path: str, ignored: bool) -> None:
    assert IgnoreRules(read_patterns("\n".join(patterns))).ignored(path) is ignored


def test_dockerignore_file_cleaning() -> None:
    assert read_patterns("# comment\n\n  /a/b/  \n!c\n") == ["a/b", "!c"]
