"""The classic builder: stages in order, one image per step, Docker's step output and cache."""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable

from strata.build import dispatch
from strata.build.cache import BuildCache
from strata.build.context import BuildContext, CopyError
from strata.build.history import metadata_comment
from strata.build.plan import StagePlan, make_plan
from strata.build.platforms import check_platform, host_warnings, platform_args, scratch_doc
from strata.build.progress import Progress
from strata.build.state import DEFAULT_PATH, BuildArgs, BuildError, BuildOptions, Stage
from strata.build.steps import Runner
from strata.digest import Digest
from strata.dockerfile import Dockerfile, DockerfileError, Instruction, ParseError, expand, parse_instruction
from strata.errors import ImageNotFound, StrataError
from strata.image.config import empty_container_config, new_image_config, ordered_config

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

    from strata.engine import Engine

__all__ = ["BuildError", "Builder"]

Puller = Callable[[str, str | None], object]  # (name, platform): pulls it into the store


class Builder:
    """The build's shared state; each running stage works on a copy of it (``for_stage``) with its
    own store connections, runner and progress channel, so independent stages run concurrently."""

    def __init__(
        self, engine: Engine, runner: Runner, opts: BuildOptions, progress: Progress, pull: Puller | None = None
    ) -> None:
        self.engine = engine
        self.runner = runner
        self.opts = opts
        self.progress = progress
        self.pull = pull
        self.pull_lock = threading.Lock()
        self.cache = BuildCache(engine)
        self.args = BuildArgs(dict(opts.build_args))
        self.finished: dict[int, Stage] = {}
        self.stage_index = -1
        self.escape = "\\"
        self.total = 0
        self.ctx: BuildContext | None = None
        self.cancelled = threading.Event()
        self.stage_wait: Callable[[str, bool], Stage | None] | None = None

    def say(self, line: str) -> None:
        self.progress.line(self.stage_index, line)

    # --- the whole file --------------------------------------------------------------------------

    def build(self, dockerfile: Dockerfile, ctx: BuildContext) -> Digest:
        self.ctx = ctx
        self.escape = dockerfile.escape
        instructions = dockerfile.instructions
        self.args.meta.update(platform_args(self.opts.platform, self.args.options))  # BuildKit's automatic ARGs
        leading = 0
        while leading < len(instructions) and instructions[leading].cmd == "arg":
            self._meta_arg(instructions[leading])
            leading += 1
        plan = make_plan(instructions, self.opts.target, self._labels(), self._meta_env(), self.escape)
        self.total = plan.total
        multi = len(plan.order) > 1
        names = {i: (plan.stages[i].name or (f"stage-{i}" if multi else ""), len(plan.stages[i].instructions))
                 for i in plan.order}  # fmt: skip
        self.progress.begin(plan.order, names, plan.total)
        for n, ins in enumerate(plan.meta, 1):
            self.progress.step(-1, f"Step {n}/{self.total} : {ins.original}")
        self.progress.stage_done(-1)
        from strata.build.schedule import run_stages

        run_stages(self, plan)
        image_id = self.finished[plan.target].image_id
        if image_id is None:
            raise StrataError("No image was generated. Is your Dockerfile empty?")
        unused = self.args.unused()
        if unused:
            self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
        return image_id

    def _labels(self) -> list[Instruction]:
        """A LABEL per ``--label``, sorted (Docker's), at the end of the target stage."""
        return [Instruction("label", f"LABEL {k}={v}", 0, args=[k, v]) for k, v in sorted(self.opts.labels.items())]

    def run_stage(self, sp: StagePlan) -> Stage:
        """The stage's instructions in order, each a ``Step N/M`` (on this stage's copy of the builder)."""
        stage: Stage | None = None
        for n, ins in enumerate(sp.instructions):
            if self.cancelled.is_set():
                raise BuildError("build cancelled")
            self.progress.step(sp.index, f"Step {sp.first_step + n}/{self.total} : {ins.original}")
            try:
                if stage is None:
                    stage = self._from(ins, sp)
                else:
                    dispatch.instruction(self, stage, ins)
                self.say(f" ---> {stage.image_id.hex[:12] if stage.image_id else ''}")
            except ParseError:
                raise
            except CopyError as e:
                raise StrataError(f"{ins.cmd.upper()} failed: {e}") from None
            except DockerfileError as e:
                raise StrataError(str(e)) from None
        assert stage is not None
        return stage

    def stage_named(self, name: str, *, by_index: bool) -> Stage | None:
        """An earlier stage by its AS name (``by_index``: or its number, as ``--from`` allows), once it is
        finished: a stage starts with the build and waits here for the stages its steps need
        (``stage_wait``, set by ``build.schedule``), so its first steps run while they build."""
        found = self._finished_named(name, by_index=by_index)
        if found is None and self.stage_wait is not None:
            return self.stage_wait(name, by_index)
        return found

    def _finished_named(self, name: str, *, by_index: bool) -> Stage | None:
        for i in sorted(self.finished):
            st = self.finished[i]
            named = st.name == name.lower() and not st.name.isdigit()
            if i < self.stage_index and (named or (by_index and str(i) == name)):
                return st
        return None

    # --- FROM and meta ARGs --------------------------------------------------------------------

    def _meta_arg(self, ins: Instruction) -> None:
        for word in ins.args:
            key, sep, default = word.partition("=")
            value = expand(default, self._meta_env(), self.escape) if sep else None
            self.args.meta[key] = self.args.options[key] if self.args.options.get(key) is not None else value
            self.args.referenced.add(key)

    def _meta_env(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.args.meta.items() if v is not None]

    def _from(self, ins: Instruction, sp: StagePlan) -> Stage:
        words = ins.args
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise ParseError(ins.line, "FROM requires either one or three arguments")
        name = expand(words[0], self._meta_env(), self.escape)
        if not name:
            raise StrataError(f"base name ({words[0]}) should not be blank")
        platform = self.opts.platform
        for flag, value in ins.flags:
            if flag != "platform":
                raise ParseError(ins.line, f"Unknown flag: {flag}")
            raw = expand(value or "", self._meta_env(), self.escape)
            try:
                platform = check_platform(raw) if raw else platform
            except StrataError as e:
                raise StrataError(f"failed to parse platform {raw}: {e}") from None
        image_id, doc = self._base(name, platform)
        stage_name = sp.name or str(sp.index)
        cfg: dict[str, Any] = copy.deepcopy((doc or {}).get("config") or {}) if doc else {}
        if not any(e.startswith("PATH=") for e in cfg.get("Env") or []):
            cfg["Env"] = [*(cfg.get("Env") or []), f"PATH={DEFAULT_PATH}"]
        stage = Stage(stage_name, image_id, cfg, doc, self.args)
        self._triggers(stage)
        return stage

    def _base(self, name: str, platform: str | None) -> tuple[Digest | None, dict[str, Any] | None]:
        if name.lower() == "scratch":  # the classic builder's empty image of the platform asked for
            return None, scratch_doc(platform or self.opts.platform)
        st = self.stage_named(name, by_index=False)
        if st is not None:
            return st.image_id, copy.deepcopy(st.doc)
        image_id = self.resolve_image(name, platform)
        return image_id, dict(self.engine.image_config(image_id).data)

    def resolve_image(self, name: str, platform: str | None = None) -> Digest:
        """A local image (whatever its platform, as Docker 20.10's classic builder), else pulled."""
        if self.opts.pull and self.pull is not None:
            return self._pulled(name, platform)
        try:
            return self.engine.resolve_image(name)
        except ImageNotFound:
            if self.pull is None:
                raise
            return self._pulled(name, platform)

    def _pulled(self, name: str, platform: str | None) -> Digest:
        assert self.pull is not None
        with self.pull_lock:  # one pull at a time, whatever stage asks
            self.pull(name, platform or self.opts.platform)
        return self.engine.resolve_image(name)

    def _triggers(self, stage: Stage) -> None:
        triggers = list(stage.config.get("OnBuild") or [])
        stage.config["OnBuild"] = None
        if not triggers:
            return
        self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}")
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
        if self.opts.cache_from:
            hit = self._cache_sources().lookup(hit, stage.image_id, cc)
        if hit is None:
            return key
        self.say(" ---> Using cache")
        self.advance(stage, hit)
        return None

    def check_step_host(self) -> None:
        """The build's step-container flags checked as the daemon checks a container a step creates
        (a metadata step's or WORKDIR's, which never start: a RUN's gets them through the runner)."""
        if self.opts.host is not None:
            self.opts.host.host_config()

    def _cache_sources(self) -> Any:
        """``--cache-from``'s images, read when a step first asks (a build without it never loads them)."""
        sources = self.__dict__.get("cache_sources")
        if sources is None:
            from strata.build.cachefrom import CacheSources

            sources = self.__dict__["cache_sources"] = CacheSources(self.engine, self.opts.cache_from)
        return sources

    def advance(self, stage: Stage, image_id: Digest, key: str | None = None) -> None:
        if key is not None:
            self.cache.put(key, image_id)
        stage.image_id = image_id
        engine = self.engine
        stage.doc_from(lambda: dict(engine.image_config(image_id).data))

    def commit_metadata(self, stage: Stage, ins: Instruction, words: list[str]) -> None:
        comment = metadata_comment(ins.cmd, stage.config, words)
        cc = stage.copy_config()
        cc["Cmd"] = [*stage.shell(), "#(nop) ", comment]
        key = self.cached(stage, cc)
        if key is None:
            return
        cc["Labels"] = cc.get("Labels") or {}  # the daemon's create gives the container's config labels
        # Docker creates (never starts) and removes a container here; nothing of it can be seen but its
        # ID, so the step names one without paying for a container
        cid = os.urandom(32).hex()
        self.check_step_host()
        if self.opts.host is not None:
            self.opts.host.say_warnings(self.say)
        for line in host_warnings(stage.doc):  # the daemon's, on its create
            self.say(line)
        self.say(f" ---> Running in {cid[:12]}")
        with self.runner.phantom(stage.image_id, cc, cid):
            image_id = self.runner.add_metadata_image(stage.image_id, self.image_doc(stage, cc, cid, True))
        self.say(f"Removing intermediate container {cid[:12]}")
        self.advance(stage, image_id, key)


def _with_defaults(cfg: dict[str, Any]) -> dict[str, Any]:
    out = empty_container_config()
    out.update(cfg)
    return out
