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
# the flags each instruction declares (BuildKit's BFlags: s a string, m strings, b a boolean); besides
# Docker 20.10's: COPY/ADD --link, ADD --checksum and RUN --network (BuildKit's, the issue's)
_FLAGS: dict[str, dict[str, str]] = {
    "from": {"platform": "s"},
    "copy": {"chown": "s", "from": "s", "chmod": "s", "link": "b"},
    "add": {"chown": "s", "chmod": "s", "link": "b", "checksum": "s"},
    "run": {"mount": "m", "network": "s"},
    "healthcheck": {"interval": "s", "timeout": "s", "start-period": "s", "retries": "s"},
}
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
        elif ins.cmd in ("copy", "add"):
            _copy(ins)
        elif ins.cmd in _METADATA:
            _metadata(ins)
        elif ins.cmd in ("arg", "maintainer", "run"):
            _other(ins)
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise StrataError(f"{name} stage name already used")
        seen.add(name)


def _from(ins: Instruction) -> str:
    """The stage's lower-cased ``AS`` name ("" for none)."""
    _flags(ins)
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


def _flags(ins: Instruction) -> None:
    """BuildKit's BFlags.Parse, in the flags' order: an unknown flag, one given twice (but a list's), a
    value missing (a boolean's ``--x=``)."""
    declared = _FLAGS.get(ins.cmd, {})
    used: set[str] = set()
    for flag, value in ins.flags:
        kind = declared.get(flag)
        if kind is None:
            raise ParseError(ins.line, f"Unknown flag: {flag}")
        if flag in used and kind != "m":
            raise ParseError(ins.line, f"Duplicate flag specified: {flag}")
        used.add(flag)
        if (value is None and kind != "b") or (value == "" and kind == "b"):
            raise ParseError(ins.line, f"Missing a value on flag: {flag}")


def _copy(ins: Instruction) -> None:
    if len(ins.args) < 2:
        raise ParseError(ins.line, f"{ins.cmd.upper()} requires at least two arguments, but only one was provided."
                                   " Destination could not be determined")  # fmt: skip
    _flags(ins)


def _other(ins: Instruction) -> None:
    """ARG (its flags not read: names, not blank), MAINTAINER (one argument), RUN (its flags, each
    ``--mount`` read: BuildKit's post-parse hook)."""
    if ins.cmd == "run":
        _flags(ins)
        mounts = [value or "" for flag, value in ins.flags if flag == "mount"]
        if mounts:  # a RUN without --mount never loads the mount machinery
            from strata.build.mounts import parse_mount

            try:
                for value in mounts:
                    parse_mount(value)
            except DockerfileError as e:
                raise ParseError(ins.line, str(e)) from None
    elif ins.cmd == "maintainer" and len(ins.args) != 1:
        raise ParseError(ins.line, "MAINTAINER requires exactly one argument")
    elif ins.cmd == "arg":
        if not ins.args:
            raise ParseError(ins.line, "ARG requires at least one argument")
        if any(a.startswith("=") for a in ins.args):
            raise ParseError(ins.line, "ARG names can not be blank")


def _metadata(ins: Instruction) -> None:
    """A metadata instruction's flags and words (HEALTHCHECK's after its type)."""
    from strata.image.config import apply_instruction  # the builder loads it anyway

    if ins.cmd != "healthcheck":
        _flags(ins)
    what = ins.cmd.upper()
    if ins.cmd in ("env", "label"):
        if not ins.args:
            raise ParseError(ins.line, f"{what} requires at least one argument")
        if any(not name for name in ins.args[::2]):
            raise ParseError(ins.line, f"{what} names can not be blank")
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
    if ins.cmd == "healthcheck" and ins.args[0].upper() != "NONE":  # NONE's flags are never read
        _flags(ins)
