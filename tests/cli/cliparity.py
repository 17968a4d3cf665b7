"""Helpers for the command-line parity tests: the Docker 20.10 client alone (it prints usage, arity and
help without a daemon; a command line it accepts fails only at connecting) and strata's parser run in
this process (so nothing a command line would do is done)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

import peers
from strata.cli import helpformat
from strata.cli.helptext import COMMANDS
from strata.cli.parser import GROUP_WORDS, GroupHelp, _choices, build_parser, parse_args
from strata.errors import StrataError

__all__ = ["ACCEPTED", "both_have", "docker", "groups_both_have", "strata", "to_strata"]

ACCEPTED = "<accepted>"
# the client reads no configuration of the machine: an empty directory of this test run (the client may
# write config.json into it; it must never create a /nonexistent that other tests rely on being absent)
_CONFIG = tempfile.mkdtemp(prefix="cliparity-docker-config-")


def _client() -> str:
    if not Path(peers.DOCKER_BIN).exists():
        try:
            peers.ensure_debs("docker.io")
        except Exception as e:  # no client, no comparison
            pytest.skip(f"no Docker 20.10 client: {e}")
    return peers.DOCKER_BIN


def to_strata(text: str) -> str:
    """Docker's text with the program named as strata names itself."""
    return re.sub(r"(^|[\"'\t]|Usage:  |^\$ )docker\b", r"\1strata", text, flags=re.M)


def docker(*args: str, raw: bool = False) -> tuple[int, str, str]:
    """``docker ARGS`` with no daemon: (exit code, stdout, stderr); unless ``raw``, (0, "", ``<accepted>``)
    when the client took the command line (it then fails to connect, or asks, or does what needs no
    daemon) rather than refusing it with a usage error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=f"unix://{_CONFIG}/no-docker.sock", DOCKER_CONFIG=_CONFIG)
    res = subprocess.run([_client(), *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                         timeout=60)
    refused = (re.search(r"^See 'docker .*--help'\.?$", res.stderr, re.M) and res.returncode in (1, 125)
               and "Cannot connect to the Docker daemon" not in res.stderr)
    if not raw and not refused:
        return 0, "", ACCEPTED
    return res.returncode, to_strata(res.stdout), to_strata(res.stderr)


def strata(*args: str) -> tuple[int, str, str]:
    """strata's parser on ``args`` in this process: (exit code, stdout, stderr) as ``strata.cli.main``
    prints them; stderr ``<accepted>`` when the command line parsed (the command is not run)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parse_args(list(args))
        except GroupHelp as e:
            return e.status, "", e.text
        except StrataError as e:
            return e.exit_code, "", f"Error: {e}\n"
        except SystemExit as e:
            return int(e.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), ACCEPTED


def both_have() -> list[str]:
    """Every command path (``tag``, ``image ls``) Docker's help table and strata both have."""
    top = _choices(build_parser(None))
    paths = []
    for path, entry in COMMANDS.items():
        words = path.split()
        if not words or entry[4]:
            continue
        if len(words) == 1:
            if words[0] in top and not _choices(top[words[0]]):
                paths.append(path)
        elif words[0] in top and (words[1] in _choices(top[words[0]])
                                  or GROUP_WORDS.get(words[0], {}).get(words[1]) in top):
            paths.append(path)
    return paths


def groups_both_have() -> list[str]:
    top = _choices(build_parser(None))
    return [path for path, entry in COMMANDS.items() if path and entry[4] and path in top]


def width_80(monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker's help width with no terminal on stdin."""
    monkeypatch.setattr(helpformat, "width", lambda: 80)
