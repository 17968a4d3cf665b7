"""RUN: the command runs in a container of the stage's image (strata's runtime, rootfs driver and
network), attached to the build's output; its filesystem changes become the step's layer."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strata.build.state import Stage
from strata.dockerfile import Instruction, ParseError

if TYPE_CHECKING:
    from strata.build.builder import Builder

__all__ = ["run_command", "run_step"]

_BUILDKIT_ONLY = "the --{} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"


def run_command(stage: Stage, ins: Instruction) -> list[str]:
    """The container's command: the JSON form as is, else the SHELL with the command line (heredocs
    as BuildKit reads them: a RUN that is only a heredoc runs its body, others go to the shell)."""
    if ins.json:
        return list(ins.args)
    text = ins.rest
    if ins.heredocs:
        only = re.fullmatch(r"\s*<<-?([\"']?)[A-Za-z_][A-Za-z0-9_]*\1\s*", text)
        if only and len(ins.heredocs) == 1:
            return [*stage.shell(), ins.heredocs[0].content]
        text += "\n" + "".join(h.content + h.name + "\n" for h in ins.heredocs)
    return [*stage.shell(), text]


def run_step(b: Builder, stage: Stage, ins: Instruction) -> None:
    from strata.build.builder import BuildError

    for name, _ in ins.flags:
        if name in ("mount", "network", "security"):
            raise ParseError(ins.line, _BUILDKIT_ONLY.format(name))
        raise ParseError(ins.line, f"Unknown flag: {name}")
    if not ins.args:
        raise ParseError(ins.line, "RUN requires at least one argument")
    cmd = run_command(stage, ins)
    history = stage.history_args()
    save_cmd = [f"|{len(history)}", *history, *cmd] if stage.run_args() else cmd
    cc = stage.copy_config()
    cc["Cmd"], cc["Entrypoint"] = save_cmd, None
    key = b.cached(stage, cc)
    if key is None:
        return
    run_cfg = stage.copy_config()
    run_cfg["Cmd"], run_cfg["Entrypoint"] = cmd, None
    run_cfg.pop("Healthcheck", None)
    with b.runner.container(stage.image_id, run_cfg, cmd, stage.run_args(), volumes=True) as c:
        b.say(f" ---> Running in {c.id[:12]}")
        code = b.runner.run(c)
        if code != 0:
            raise BuildError(
                f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", exit_code=code
            )
        image_id = b.runner.commit(c, stage.image_id, lambda empty: b.image_doc(stage, cc, c.id, empty))
        b.say(f"Removing intermediate container {c.id[:12]}")
    b.advance(stage, image_id, key)
