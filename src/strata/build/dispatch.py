"""One instruction of a stage: metadata steps (a config change, an empty layer), ARG, WORKDIR,
RUN, COPY and ADD, with Docker's history comments and cache keys."""

from __future__ import annotations

import os
import posixpath
import re

from strata.build.platforms import host_warnings
from strata.build.scoped import mkdir_all
from strata.build.state import Stage
from strata.dockerfile import DockerfileError, Instruction, ParseError, expand
from strata.image.config import apply_instruction

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

    from strata.build.builder import Builder

__all__ = ["instruction"]

_METADATA = frozenset({
    "env", "label", "cmd", "entrypoint", "expose", "volume", "user", "stopsignal", "shell", "healthcheck", "onbuild",
})  # fmt: skip


def instruction(b: Builder, stage: Stage, ins: Instruction) -> None:
    if ins.cmd in _METADATA:
        _metadata(b, stage, ins)
    elif ins.cmd == "maintainer":
        stage.author = ins.rest
        b.commit_metadata(stage, ins, [ins.rest])
    elif ins.cmd == "arg":
        _arg(b, stage, ins)
    elif ins.cmd == "workdir":
        _workdir(b, stage, ins)
    elif ins.cmd == "run":
        from strata.build.run import run_step

        run_step(b, stage, ins)
    elif ins.cmd in ("copy", "add"):
        _copy(b, stage, ins)
    else:
        raise ParseError(ins.line, f"unknown instruction: {ins.cmd.upper()}")


def _located(ins: Instruction, e: DockerfileError) -> DockerfileError:
    """A metadata step's error: build.precheck refused what Docker's parser does (with its line), so
    what is left is Docker's dispatch, on the expanded words, and says no line; an ONBUILD trigger's
    (never prechecked) keeps it."""
    if ins.line and not isinstance(e, ParseError) and ins.cmd in ("healthcheck", "onbuild", "shell"):
        return ParseError(ins.line, str(e))
    return e


def _words(b: Builder, stage: Stage, ins: Instruction) -> list[str]:
    """The expanded arguments Docker writes into the step's history comment."""
    env = stage.expand_env()
    if ins.cmd in ("env", "label", "expose", "volume", "user", "stopsignal"):
        words = [expand(w.strip(), env, b.escape) for w in ins.args]
        return sorted(" ".join(words).split()) if ins.cmd == "expose" else words
    if ins.cmd == "onbuild":
        return [re.sub(r"(?i)^\s*ONBUILD\s*", "", ins.original)]
    return []


def _metadata(b: Builder, stage: Stage, ins: Instruction) -> None:
    state = {"cmd_set": stage.cmd_set}
    before = stage.config.get("Healthcheck") if ins.cmd == "healthcheck" else None
    try:
        words = _words(b, stage, ins)
        apply_instruction(ins, stage.config, state, env=stage.expand_env(), escape=b.escape)
    except DockerfileError as e:
        raise _located(ins, e) from None
    if before:  # the history says the check as given; the image has it merged
        from strata.build.history import healthcheck_text

        words = [healthcheck_text(stage.config.get("Healthcheck") or {})]
        _healthcheck_over(b, before, stage.config)
    if ins.cmd == "stopsignal":  # Docker's dispatch checks it (signal.ParseSignal): "Invalid signal: X"
        from strata.container.lifecycle import parse_signal

        parse_signal(str(stage.config["StopSignal"]))
    stage.cmd_set = state["cmd_set"]
    b.commit_metadata(stage, ins, words)


def _healthcheck_over(b: Builder, before: dict[str, Any], config: dict[str, Any]) -> None:
    """A HEALTHCHECK over another: Docker's note, and the step container's create (its config merged
    with the parent image's) fills what the new one leaves zero from the old one."""
    test = list(before.get("Test") or [])
    if test and test[0] != "NONE":
        b.say(f"Note: overriding previous HEALTHCHECK: [{' '.join(test)}]")
    given = config.get("Healthcheck") or {}
    merged = {key: given.get(key) or before.get(key) for key in ("Test", "Interval", "Timeout", "StartPeriod", "Retries")}
    config["Healthcheck"] = {key: value for key, value in merged.items() if value}  # Go's field order


def _arg(b: Builder, stage: Stage, ins: Instruction) -> None:
    if not ins.args:
        raise ParseError(ins.line, "ARG requires exactly one argument")
    shown = []
    for word in ins.args:
        key, sep, default = word.partition("=")
        value = expand(default, stage.expand_env(), b.escape) if sep else None
        stage.declared[key] = value
        b.args.referenced.add(key)
        shown.append(key + (f"={value}" if value is not None else ""))
    b.commit_metadata(stage, ins, shown)


def _workdir(b: Builder, stage: Stage, ins: Instruction) -> None:
    try:
        apply_instruction(
            ins, stage.config, {"cmd_set": stage.cmd_set}, env=stage.expand_env(), escape=b.escape
        )
    except DockerfileError as e:
        raise _located(ins, e) from None
    workdir = str(stage.config["WorkingDir"])
    cc = stage.copy_config()
    cc["Cmd"] = [*stage.shell(), f"#(nop) WORKDIR {workdir}"]
    key = b.cached(stage, cc)
    if key is None:
        return
    cc["Labels"] = cc.get("Labels") or {}  # the daemon's create gives the container's config labels
    b.check_step_host()
    with b.runner.step_root(stage.image_id, cc, cc["Cmd"], events=True) as root:  # Docker's, never started
        if b.opts.host is not None:
            b.opts.host.say_warnings(b.say)
        for line in host_warnings(stage.doc):  # the daemon's, on its create
            b.say(line)
        b.say(f" ---> Running in {root.id[:12]}")
        root_fd = os.open(root.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd, _ = mkdir_all(root_fd, workdir)
            os.close(fd)
        finally:
            os.close(root_fd)
        image_id = b.runner.commit(root, stage.image_id, lambda empty: b.image_doc(stage, cc, root.id, empty))
        b.say(f"Removing intermediate container {root.id[:12]}")
    b.advance(stage, image_id, key)


def _dest(stage: Stage, dest: str) -> str:
    """Docker's normalizeDest: relative to WORKDIR, a trailing slash (or ``.``) kept as a directory."""
    if dest.startswith("/"):
        return dest
    workdir = str(stage.config.get("WorkingDir") or "/")
    joined = posixpath.join(workdir, dest)
    if dest.endswith("/") or dest in (".", "./") or dest.endswith("/."):
        joined = posixpath.normpath(joined) + "/"
    return joined


def _copy(b: Builder, stage: Stage, ins: Instruction) -> None:
    from strata.build.copysteps import CopyStep

    allowed = ("chown", "chmod", "from", "link") if ins.cmd == "copy" else ("chown", "chmod", "link", "checksum")
    for name, _ in ins.flags:
        if name == "checksum" and ins.cmd == "copy":
            raise DockerfileError("checksum can't be specified for COPY")  # BuildKit's words
        if name not in allowed:
            raise ParseError(ins.line, f"Unknown flag: {name}")
    env = stage.expand_env()
    words = [expand(w, env, b.escape) for w in ins.args]
    if len(words) < 2:
        raise ParseError(ins.line, f"{ins.cmd.upper()} requires at least two arguments")
    checksum = ins.flag("checksum")
    if checksum is not None:
        _check_checksum(expand(checksum, env, b.escape), words[:-1])
    CopyStep(b, stage, ins, words[:-1], words[-1], _dest(stage, words[-1])).run()


def _check_checksum(value: str, srcs: list[str]) -> None:
    """``ADD --checksum=<digest>`` (BuildKit's): one HTTP(S) source and a well-formed digest."""
    if len(srcs) != 1:
        raise DockerfileError("checksum can't be specified for multiple sources")
    if not srcs[0].startswith(("http://", "https://")):
        raise DockerfileError("checksum can't be specified for non-HTTP(S) sources")
    algo, sep, hexpart = value.partition(":")
    if not sep or not algo or not hexpart:
        raise DockerfileError("invalid checksum digest format")
    sizes = {"sha256": 64, "sha384": 96, "sha512": 128}
    if algo not in sizes:
        raise DockerfileError("unsupported digest algorithm")
    if len(hexpart) != sizes[algo] or not re.fullmatch(r"[a-f0-9]+", hexpart):
        raise DockerfileError("invalid checksum digest length" if len(hexpart) != sizes[algo] else "invalid checksum digest format")
