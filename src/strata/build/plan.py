"""Which stages a build runs, and in what order they may: the meta ARGs before the first FROM, each
stage's instructions, the stages it needs (``FROM <stage>``, ``COPY --from=<stage>``), and only the
stages the target needs (BuildKit's behaviour: a stage nothing needs never runs). Steps are numbered
in file order over the stages that run, so ``Step N/M`` counts what is built."""

from __future__ import annotations

from strata.dockerfile import Instruction, expand
from strata.errors import StrataError

__all__ = ["Plan", "StagePlan", "make_plan"]


class StagePlan:
    def __init__(self, index: int, name: str, instructions: list[Instruction]) -> None:
        self.index = index
        self.name = name  # the lower-cased AS name, or "" for none
        self.instructions = instructions
        self.deps: set[int] = set()
        self.first_step = 0  # the number of its FROM step

    @property
    def key(self) -> str:
        return self.name or str(self.index)


class Plan:
    def __init__(self, meta: list[Instruction], stages: list[StagePlan], order: list[int], target: int, total: int) -> None:
        self.meta = meta
        self.stages = stages
        self.order = order  # the stages that run, in file order
        self.target = target
        self.total = total


def _stage_ref(stages: list[StagePlan], before: int, name: str, *, by_index: bool) -> int | None:
    """The earlier stage ``name`` means (a ``--from`` may give its index too)."""
    low = name.lower()
    for st in stages[:before]:
        if (st.name and st.name == low) or (by_index and str(st.index) == name):
            return st.index
    return None


def _deps(stages: list[StagePlan], st: StagePlan, meta_env: list[str], escape: str) -> set[int]:
    deps: set[int] = set()
    base = expand(st.instructions[0].args[0], meta_env, escape) if st.instructions[0].args else ""
    found = _stage_ref(stages, st.index, base, by_index=False)
    if found is not None:
        deps.add(found)
    for ins in st.instructions[1:]:
        src = ins.flag("from") if ins.cmd == "copy" else None
        if src:
            found = _stage_ref(stages, st.index, src, by_index=True)
            if found is not None:
                deps.add(found)
        if ins.cmd == "run" and any(name == "mount" for name, _ in ins.flags):  # RUN --mount=from=<stage>
            from strata.build.mounts import mount_froms

            named = (_stage_ref(stages, st.index, s, by_index=False) for s in mount_froms(ins))
            deps |= {i for i in named if i is not None}
    return deps


def _split(instructions: list[Instruction]) -> tuple[list[Instruction], list[StagePlan]]:
    meta: list[Instruction] = []
    stages: list[StagePlan] = []
    for ins in instructions:
        if ins.cmd == "from":
            words = ins.args
            name = words[2].lower() if len(words) == 3 and words[1].lower() == "as" else ""
            stages.append(StagePlan(len(stages), name, [ins]))
        elif stages:
            stages[-1].instructions.append(ins)
        elif ins.cmd == "arg":
            meta.append(ins)
        else:
            raise StrataError("Please provide a source image with `from` prior to commit")
    return meta, stages


def make_plan(instructions: list[Instruction], target: str | None, labels: list[Instruction],
              meta_env: list[str], escape: str) -> Plan:  # fmt: skip
    """``labels``: the ``--label`` steps, run at the end of the target stage."""
    if not instructions:
        raise StrataError("failed to parse Dockerfile: file with no instructions")  # an empty file: build.api
    from strata.build.precheck import check_instructions

    check_instructions(instructions)  # what Docker refuses before any step runs
    meta, stages = _split(instructions)
    if not stages:
        raise StrataError("No image was generated. Is your Dockerfile empty?")
    tgt = len(stages) - 1
    if target:
        named = [st.index for st in stages if st.name == target.lower()]
        if not named:
            raise StrataError(f"failed to reach build target {target} in Dockerfile")
        tgt = named[0]
    stages[tgt].instructions.extend(labels)
    for st in stages:
        st.deps = _deps(stages, st, meta_env, escape)
    needed = {tgt}
    for st in reversed(stages[: tgt + 1]):  # dependencies come earlier in the file
        if st.index in needed:
            needed |= st.deps
    order = sorted(needed)
    step = len(meta)
    for i in order:
        stages[i].first_step = step + 1
        step += len(stages[i].instructions)
    return Plan(meta, stages, order, tgt, step)
