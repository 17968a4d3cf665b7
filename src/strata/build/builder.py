"""The classic builder: stages in order, one image per step, Docker's step output and cache."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from strata.build.cache import BuildCache
from strata.build.context import BuildContext, CopyError
from strata.build.history import metadata_comment
from strata.build.state import DEFAULT_PATH, BuildArgs, BuildError, BuildOptions, Stage
from strata.build.steps import Runner
from strata.digest import Digest
from strata.dockerfile import Dockerfile, DockerfileError, Instruction, ParseError, expand, parse_instruction
from strata.errors import ImageNotFound, StrataError
from strata.image.config import empty_container_config, new_image_config, ordered_config

if TYPE_CHECKING:
    from strata.engine import Engine

__all__ = ["BuildError", "Builder"]

Puller = Callable[[str], Digest]


class Builder:
    def __init__(
        self, engine: Engine, runner: Runner, opts: BuildOptions, out: TextIO, pull: Puller | None = None
    ) -> None:
        self.engine = engine
        self.runner = runner
        self.opts = opts
        self.out = out
        self.pull = pull
        self.cache = BuildCache(engine)
        self.args = BuildArgs(dict(opts.build_args))
        self.stages: list[Stage] = []
        self.escape = "\\"
        self.step = 0
        self.total = 0
        self.ctx: BuildContext | None = None

    def say(self, line: str) -> None:
        if not self.opts.quiet:
            self.out.write(line + "\n")
            self.out.flush()

    # --- the whole file --------------------------------------------------------------------------

    def build(self, dockerfile: Dockerfile, ctx: BuildContext) -> Digest:
        self.ctx = ctx
        self.escape = dockerfile.escape
        plan = self._plan(dockerfile.instructions)
        self.total = len(plan)
        for ins in plan:
            self.step += 1
            self.say(f"Step {self.step}/{self.total} : {ins.original}")
            try:
                self._dispatch(ins)
                if self.stages:
                    image_id = self.stages[-1].image_id
                    self.say(f" ---> {image_id.hex[:12] if image_id else ''}")
            except ParseError:
                raise
            except CopyError as e:
                raise StrataError(f"{ins.cmd.upper()} failed: {e}") from None
            except DockerfileError as e:
                raise StrataError(str(e)) from None
        if not self.stages or self.stages[-1].image_id is None:
            raise StrataError("No image was generated. Is your Dockerfile empty?")
        unused = self.args.unused()
        if unused:
            self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
        return self.stages[-1].image_id

    def _plan(self, instructions: list[Instruction]) -> list[Instruction]:
        """The instructions up to the end of the target stage, then a LABEL per ``--label``."""
        if not instructions:
            raise StrataError("the Dockerfile cannot be empty")
        if instructions[0].cmd not in ("from", "arg"):
            raise StrataError("failed to parse Dockerfile: no build stage in current context")
        plan = list(instructions)
        if self.opts.target:
            plan = self._until_target(plan, self.opts.target)
        for key, value in sorted(self.opts.labels.items()):  # one LABEL per --label, sorted (Docker's)
            plan.append(Instruction("label", f"LABEL {key}={value}", 0, args=[key, value]))
        return plan

    @staticmethod
    def _until_target(plan: list[Instruction], target: str) -> list[Instruction]:
        froms = [i for i, ins in enumerate(plan) if ins.cmd == "from"]
        for n, start in enumerate(froms):
            words = plan[start].args
            if len(words) == 3 and words[2].lower() == target.lower():
                end = froms[n + 1] if n + 1 < len(froms) else len(plan)
                return plan[:end]
        raise StrataError(f"failed to reach build target {target} in Dockerfile")

    def _dispatch(self, ins: Instruction) -> None:
        if ins.cmd == "from":
            self._from(ins)
            return
        if not self.stages:
            if ins.cmd != "arg":
                raise StrataError("Please provide a source image with `from` prior to commit")
            self._meta_arg(ins)
            return
        from strata.build import dispatch

        dispatch.instruction(self, self.stages[-1], ins)

    # --- FROM and meta ARGs --------------------------------------------------------------------

    def _meta_arg(self, ins: Instruction) -> None:
        for word in ins.args:
            key, sep, default = word.partition("=")
            value = expand(default, self._meta_env(), self.escape) if sep else None
            self.args.meta[key] = self.args.options[key] if self.args.options.get(key) is not None else value
            self.args.referenced.add(key)

    def _meta_env(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.args.meta.items() if v is not None]

    def _from(self, ins: Instruction) -> None:
        words = ins.args
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise ParseError(ins.line, "FROM requires either one or three arguments")
        name = expand(words[0], self._meta_env(), self.escape)
        image_id, doc = self._base(name)
        stage_name = words[2].lower() if len(words) == 3 else str(len(self.stages))
        cfg: dict[str, Any] = copy.deepcopy((doc or {}).get("config") or {}) if doc else {}
        if not any(e.startswith("PATH=") for e in cfg.get("Env") or []):
            cfg["Env"] = [*(cfg.get("Env") or []), f"PATH={DEFAULT_PATH}"]
        stage = Stage(stage_name, image_id, cfg, doc, self.args)
        self.stages.append(stage)
        self._triggers(stage)

    def _base(self, name: str) -> tuple[Digest | None, dict[str, Any] | None]:
        if name.lower() == "scratch":
            return None, None
        for st in self.stages:
            if st.name == name.lower():
                return st.image_id, copy.deepcopy(st.doc)
        image_id = self.resolve_image(name)
        return image_id, dict(self.engine.image_config(image_id).data)

    def resolve_image(self, name: str) -> Digest:
        if self.opts.pull and self.pull is not None:
            return self.pull(name)
        try:
            return self.engine.resolve_image(name)
        except ImageNotFound:
            if self.pull is None:
                raise
            return self.pull(name)

    def _triggers(self, stage: Stage) -> None:
        triggers = list(stage.config.get("OnBuild") or [])
        stage.config["OnBuild"] = None
        if not triggers:
            return
        self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}")
        from strata.build import dispatch

        for text in triggers:
            trig = parse_instruction(text, 0, self.escape)
            if trig.cmd in ("onbuild", "from", "maintainer"):
                raise StrataError(f"{trig.cmd.upper()} isn't allowed as an ONBUILD trigger")
            dispatch.instruction(self, stage, trig)

    # --- committing ------------------------------------------------------------------------------

    def image_doc(self, stage: Stage, cc: dict[str, Any], container: str, empty: bool) -> dict[str, Any]:
        """The config document of the step's image: ``config`` = the stage's config, history from ``cc``."""
        cfg = stage.copy_config()
        cfg["Image"] = str(stage.image_id or "")
        cc = copy.deepcopy(cc)
        cc["Image"] = str(stage.image_id or "")
        return new_image_config(
            config=ordered_config(_with_defaults(cfg)), created_by=" ".join(cc.get("Cmd") or []), base=stage.doc,
            container=container, container_config=ordered_config(_with_defaults(cc)), author=stage.author,
            empty_layer=empty,
        )  # fmt: skip

    def cached(self, stage: Stage, cc: dict[str, Any], extra: list[str] | None = None) -> str | None:
        """The cache key of a step (``extra``: what else decides it, e.g. RUN's mounts); prints
        ``Using cache`` and moves the stage on when it hits."""
        key = self.cache.key(stage.image_id, {**cc, "strata.extra": extra} if extra else cc)
        if self.opts.no_cache:
            return key
        hit = self.cache.get(key)
        if hit is None:
            return key
        self.say(" ---> Using cache")
        self.advance(stage, hit)
        return None

    def advance(self, stage: Stage, image_id: Digest, key: str | None = None) -> None:
        if key is not None:
            self.cache.put(key, image_id)
        stage.image_id = image_id
        stage.doc = dict(self.engine.image_config(image_id).data)

    def commit_metadata(self, stage: Stage, ins: Instruction, words: list[str]) -> None:
        comment = metadata_comment(ins.cmd, stage.config, words)
        cc = stage.copy_config()
        cc["Cmd"] = [*stage.shell(), "#(nop) ", comment]
        key = self.cached(stage, cc)
        if key is None:
            return
        with self.runner.container(stage.image_id, cc, list(cc["Cmd"]), []) as c:  # as Docker: never started
            self.say(f" ---> Running in {c.id[:12]}")
            image_id = self.runner.add_metadata_image(stage.image_id, self.image_doc(stage, cc, c.id, True))
            self.say(f"Removing intermediate container {c.id[:12]}")
        self.advance(stage, image_id, key)


def _with_defaults(cfg: dict[str, Any]) -> dict[str, Any]:
    out = empty_container_config()
    out.update(cfg)
    return out
