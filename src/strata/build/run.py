"""RUN: the command runs in a container of the stage's image (strata's runtime, rootfs driver and
network), attached to the build's output; its filesystem changes become the step's layer."""

from __future__ import annotations

import re

from strata.build.platforms import host_warnings
from strata.build.state import BuildError, Stage
from strata.dockerfile import DockerfileError, Instruction, ParseError
from strata.errors import RuntimeFailure
from strata.store.root import as_path

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

    from strata.build.builder import Builder
    from strata.build.mounts import RunMount
    from strata.container.records import Container
    from strata.digest import Digest

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


def _flags(ins: Instruction) -> tuple[list[RunMount], str | None]:
    mounts: list[RunMount] = []
    network = None
    for name, value in ins.flags:
        if name == "mount":
            from strata.build.mounts import parse_mount  # a RUN without --mount never loads it

            try:
                mounts.append(parse_mount(value or ""))
            except DockerfileError as e:
                raise ParseError(ins.line, str(e)) from None
        elif name == "network":
            if value not in ("default", "none", "host"):
                raise ParseError(ins.line, f"unsupported network mode {value!r}")
            network = value
        elif name == "security":
            raise ParseError(ins.line, _BUILDKIT_ONLY.format(name))
        else:
            raise ParseError(ins.line, f"Unknown flag: {name}")
    return mounts, network


def _ssh_targets(mounts: list[RunMount], run_cfg: dict[str, Any]) -> list[str]:
    from strata.build.mounts import mount_targets

    where = mount_targets(mounts, str(run_cfg.get("WorkingDir") or "/"))
    return [t for m, t in zip(mounts, where, strict=True) if m.kind == "ssh"]


def run_step(b: Builder, stage: Stage, ins: Instruction) -> None:
    mounts, network = _flags(ins)
    if not ins.args:
        raise ParseError(ins.line, "RUN requires at least one argument")
    cmd = run_command(stage, ins)
    history = stage.history_args()
    save_cmd = [f"|{len(history)}", *history, *cmd] if stage.run_args() else cmd
    cc = stage.copy_config()
    cc["Cmd"], cc["Entrypoint"] = save_cmd, None
    extra = [f"{k}={v}" for k, v in ins.flags]
    if mounts:  # what the mounts show is part of the key (a RUN without --mount never loads them)
        from strata.build.mounts import mount_keys

        extra += mount_keys(b, mounts)
    key = b.cached(stage, cc, extra=extra)
    if key is None:
        return
    run_cfg = stage.copy_config()
    run_cfg["Cmd"], run_cfg["Entrypoint"] = cmd, None
    run_cfg.pop("Healthcheck", None)
    if any(m.kind == "ssh" for m in mounts):
        from strata.build.sshforward import ssh_env

        run_cfg["Env"] = ssh_env(list(run_cfg.get("Env") or []), _ssh_targets(mounts, run_cfg))
    _execute(b, stage, cc, run_cfg, (mounts, network), key)


def _execute(
    b: Builder, stage: Stage, cc: dict[str, Any], run_cfg: dict[str, Any],
    flags: tuple[list[RunMount], str | None], key: str,
) -> None:  # fmt: skip
    mounts, network = flags
    if mounts:
        _execute_with_mounts(b, stage, cc, run_cfg, flags, key)
        return
    cmd = list(run_cfg["Cmd"])  # no --mount: none of the mount machinery is loaded or run
    with b.runner.container(stage.image_id, run_cfg, cmd, stage.run_args(), volumes=True, network=network,
                            host=b.opts.host) as c:
        image_id = _run_and_commit(b, stage, cc, c, cmd, [])
    b.advance(stage, image_id, key)


def _run_and_commit(b: Builder, stage: Stage, cc: dict[str, Any], c: Container, cmd: list[str], made: list[str]) -> Digest:
    """The step container run to its end, the mount points the runtime made (``made``) removed, and
    its changes committed: the step's image."""
    if b.opts.host is not None:
        b.opts.host.say_warnings(b.say)
    for line in host_warnings(stage.doc):  # the daemon's, on its create
        b.say(line)
    b.say(f" ---> Running in {c.id[:12]}")
    try:
        code = b.runner.run(c)
    except RuntimeFailure as e:  # the daemon's words for a step container that did not start; exit 1
        raise BuildError(str(e).replace("failed to create task for container: ", "failed to create shim task: ", 1),
                         exit_code=1) from None
    if code != 0:
        raise BuildError(f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", exit_code=code)
    if made:
        from strata.build.mounts import remove_mount_points

        with b.runner.rootfs_fd(c) as root_fd:
            remove_mount_points(root_fd, made)
    image_id = b.runner.commit(c, stage.image_id, lambda empty: b.image_doc(stage, cc, c.id, empty))
    b.say(f"Removing intermediate container {c.id[:12]}")
    return image_id


def _execute_with_mounts(
    b: Builder, stage: Stage, cc: dict[str, Any], run_cfg: dict[str, Any],
    flags: tuple[list[RunMount], str | None], key: str,
) -> None:  # fmt: skip
    import shutil  # a RUN with --mount that runs (a cached one does not)
    import tempfile

    from strata.build.mounts import made_mount_points, mount_binds

    cmd = list(run_cfg["Cmd"])
    mounts, network = flags
    scratch = as_path(tempfile.mkdtemp(dir=b.engine.store.tmp, prefix="build-mounts-"))
    try:
        with mount_binds(b, str(run_cfg.get("WorkingDir") or "/"), mounts, scratch) as binds, b.runner.container(
            stage.image_id, run_cfg, cmd, stage.run_args(), volumes=True, binds=binds, network=network,
            host=b.opts.host,
        ) as c:
            with b.runner.rootfs_fd(c) as root_fd:
                made = made_mount_points(root_fd, [bind.destination for bind in binds])
            image_id = _run_and_commit(b, stage, cc, c, cmd, made)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    b.advance(stage, image_id, key)
