"""What Docker 20.10's classic builder refuses in a Dockerfile before its first step runs (its
``instructions.Parse`` of every instruction, in file order): ``FROM``'s arguments, flags and stage name,
``COPY``/``ADD`` without a destination or with a flag they do not know, an instruction before the
first ``FROM``, a metadata instruction's flags and argument count, ``HEALTHCHECK``, ``ONBUILD`` and
``SHELL`` whole (their words are never expanded); then a stage name used twice. The steps check the
rest, on the expanded words, as they run (and say it without a line: Docker's dispatch errors)."""

from __future__ import annotations

import re

from strata.dockerfile import DockerfileError, Instruction, ParseError
from strata.errors import StrataError

__all__ = ["check_instructions"]

_STAGE_NAME = re.compile(r"[a-z][a-z0-9_.-]*")  # Go's ^[a-z][a-z0-9-_\.]*$
_COPY_FLAGS = {"copy": ("chown", "chmod", "from", "link"), "add": ("chown", "chmod", "link", "checksum")}
_METADATA = frozenset({"env", "label", "cmd", "entrypoint", "expose", "volume", "user", "workdir", "stopsignal", "shell",
                       "onbuild", "healthcheck"})  # fmt: skip


def check_instructions(instructions: list[Instruction]) -> None:
    """Docker's error for the first instruction it refuses, else for a stage name used twice."""
    names: list[str] = []
    for ins in instructions:
        if ins.cmd == "from":
            names.append(_from(ins))
        elif not names and ins.cmd != "arg":
            raise StrataError("no build stage in current context")
        elif ins.cmd in _COPY_FLAGS:
            _copy(ins)
        elif ins.cmd in _METADATA:
            _metadata(ins)
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise StrataError(f"{name} stage name already used")
        seen.add(name)


def _from(ins: Instruction) -> str:
    """The stage's lower-cased ``AS`` name ("" for none)."""
    for flag, _ in ins.flags:
        if flag != "platform":
            raise ParseError(ins.line, f"Unknown flag: {flag}")
    words = ins.args
    if len(words) == 3 and words[1].lower() == "as":
        if not _STAGE_NAME.fullmatch(words[2].lower()):
            import json  # only for the error: a cached rebuild's start-up loads no json

            raise ParseError(ins.line, f"invalid name for build stage: {json.dumps(words[2], ensure_ascii=False)}, name can't start"
                                       " with a number or contain symbols")  # fmt: skip
        return words[2].lower()
    if len(words) != 1:
        raise ParseError(ins.line, "FROM requires either one or three arguments")
    return ""


def _copy(ins: Instruction) -> None:
    for flag, _ in ins.flags:
        if flag not in _COPY_FLAGS[ins.cmd] and not (flag == "checksum" and ins.cmd == "copy"):
            raise ParseError(ins.line, f"Unknown flag: {flag}")
    if len(ins.args) < 2:
        raise ParseError(ins.line, f"{ins.cmd.upper()} requires at least two arguments, but only one was provided."
                                   " Destination could not be determined")  # fmt: skip


def _metadata(ins: Instruction) -> None:
    from strata.image.config import apply_instruction  # the builder loads it anyway

    if ins.cmd != "healthcheck":
        for flag, _ in ins.flags:
            raise ParseError(ins.line, f"Unknown flag: {flag}")
    what = ins.cmd.upper()
    if ins.cmd in ("user", "workdir", "stopsignal") and len(ins.args) != 1:
        raise ParseError(ins.line, f"{what} requires exactly one argument")
    if ins.cmd in ("expose", "volume") and not ins.args:
        raise ParseError(ins.line, f"{what} requires at least one argument")
    if ins.cmd == "volume" and any(not v.strip() for v in ins.args):
        raise ParseError(ins.line, "VOLUME specified can not be an empty string")
    if ins.cmd in ("healthcheck", "onbuild", "shell"):
        try:
            apply_instruction(ins, {}, {"cmd_set": False}, env=[])
        except DockerfileError as e:
            raise ParseError(ins.line, str(e)) from None
