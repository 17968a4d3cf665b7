"""Issue 10's audit of what Docker 20.10's classic builder refuses while it parses the Dockerfile
(before its first step prints): each instruction's flags as its BFlags read them (an unknown flag, one
given twice, a value missing), ``ARG``/``LABEL``/``ENV``/``MAINTAINER`` word counts and blank names, a
RUN's ``--mount`` values, BuildKit-only flags the issue does not ask for (``RUN --security``, ``COPY
--checksum``), a JSON array of non-strings (the AST parser's words); and what it accepts: a bare
``--`` ending the flags, a JSON array left open (the shell form). A failed step that is not a RUN's
command exits 1 (the CLI's code for the daemon's error), as Docker's."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

BB = BUSYBOX
LINE2 = "dockerfile parse error line 2: "
CASES = {
    "env-none": ("ENV", LINE2 + "ENV requires at least one argument"),
    "label-none": ("LABEL", LINE2 + "LABEL requires at least one argument"),
    "arg-none": ("ARG", LINE2 + "ARG requires at least one argument"),
    "arg-flag-only": ("ARG --x", LINE2 + "ARG requires at least one argument"),
    "maintainer-none": ("MAINTAINER", LINE2 + "MAINTAINER requires exactly one argument"),
    "env-blank-name": ("ENV A=1 =x", LINE2 + "ENV names can not be blank"),
    "label-blank-name": ("LABEL =x", LINE2 + "LABEL names can not be blank"),
    "arg-blank-name": ("ARG --x=1 =a", LINE2 + "ARG names can not be blank"),
    "env-flag-first": ("ENV --x =a", LINE2 + "Unknown flag: x"),
    "copy-count-first": ("COPY --nope a.txt", LINE2 + "COPY requires at least two arguments, but only one was provided."
                         " Destination could not be determined"),
    "copy-chown-no-value": ("COPY --chown a.txt /b", LINE2 + "Missing a value on flag: chown"),
    "copy-from-no-value": ("COPY --from a.txt /b", LINE2 + "Missing a value on flag: from"),
    "copy-flag-twice": ("COPY --chown=1 --chown=2 a.txt /b", LINE2 + "Duplicate flag specified: chown"),
    "copy-checksum": ("COPY --checksum=sha256:abc a.txt /a", LINE2 + "Unknown flag: checksum"),
    "healthcheck-no-value": ("HEALTHCHECK --interval CMD true", LINE2 + "Missing a value on flag: interval"),
    "healthcheck-twice": ("HEALTHCHECK --interval=1s --interval=2s CMD x", LINE2 + "Duplicate flag specified: interval"),
    "run-security": ("RUN --security=insecure true", LINE2 + "Unknown flag: security"),
    "run-unknown-before-mount": ("RUN --nope=1 --mount=type=nope true", LINE2 + "Unknown flag: nope"),
    "run-mount-type": ("RUN --mount=type=nope true", LINE2 + 'unsupported mount type "nope"'),
    "run-mount-no-value": ("RUN --mount true", LINE2 + "Missing a value on flag: mount"),
    "cmd-not-strings": ('CMD ["a", 1]', "failed to parse Dockerfile: when using JSON array syntax, arrays must be"
                        " comprised of strings only"),
    "run-not-strings": ('RUN ["a", 1]', "failed to parse Dockerfile: when using JSON array syntax, arrays must be"
                        " comprised of strings only"),
    "from-platform-no-value": ("FROM --platform " + BB, LINE2 + "Missing a value on flag: platform"),
    "from-platform-twice": (f"FROM --platform=linux/amd64 --platform=linux/amd64 {BB}",
                            LINE2 + "Duplicate flag specified: platform"),
}  # fmt: skip


def _ctx(tmp_path: Path, line: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(f"FROM {BB}\n{line}\n")
    (ctx / "a.txt").write_text("a\n")
    return ctx


def _error(stderr: str) -> str:
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    return re.sub(r"^(Error: |Error response from daemon: )", "", last)


def _steps(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("Step ")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_while_parsing(strata: Strata, busybox: str, tmp_path: Path, case: str) -> None:
    line, error = CASES[case]
    r = strata("build", "--network", "none", str(_ctx(tmp_path, line)), check=False)
    assert (r.returncode, _error(r.stderr)) == (1, error), r.stderr
    assert _steps(r.stdout) == [], r.stdout  # before the first step, as Docker's parser
    assert strata("ps", "-aq").stdout == ""


def _docker(dockerd: Any, ctx: Path) -> subprocess.CompletedProcess[str]:
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    argv = dockerd.argv("build", "--network", "none", "--no-cache", str(ctx))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=ctx)


@pytest.mark.peers
@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_while_parsing_as_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str,
                                         tmp_path: Path, case: str) -> None:  # fmt: skip
    ctx = _ctx(tmp_path, CASES[case][0])
    theirs = _docker(dockerd, ctx)
    ours = strata("build", "--network", "none", "--no-cache", str(ctx), check=False)
    assert (ours.returncode, _error(ours.stderr)) == (theirs.returncode, _error(theirs.stderr)) == (1, CASES[case][1])
    assert _steps(ours.stdout) == _steps(theirs.stdout) == []


def test_open_json_array_is_the_shell_form(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """``ENTRYPOINT ["a"`` is no JSON array: the shell form (the JSON scanner's error was a crash)."""
    r = strata("build", "-q", "-t", "open-json:1", str(_ctx(tmp_path, 'ENTRYPOINT ["a"')))
    assert r.stderr == ""
    out = strata("inspect", "-f", "{{json .Config.Entrypoint}}", "open-json:1").stdout
    assert out == '["/bin/sh","-c","[\\"a\\""]\n'


def test_double_dash_ends_the_flags(strata: Strata, busybox: str, tmp_path: Path) -> None:
    strata("build", "-q", "-t", "dashes:1", str(_ctx(tmp_path, "COPY -- a.txt /b")))
    r = strata("run", "--rm", "--network", "none", "dashes:1", "cat", "/b")
    assert r.stdout == "a\n"


def test_step_error_exits_1(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """A step container's user that is not there: the daemon's error, exit 1 (``run``'s 125 is not the build's)."""
    r = strata("build", "--network", "none", str(_ctx(tmp_path, "USER nosuch\nRUN id")), check=False)
    assert (r.returncode, _error(r.stderr)) == (1, "unable to find user nosuch: no matching entries in passwd file")
    assert strata("ps", "-aq").stdout == ""
