"""The stages of a build run concurrently: each in a thread of its own from the start, on a copy of the
builder with its own store connections (SQLite connections are not shared between threads); a step
that needs another stage (``FROM``, ``COPY --from``, ``RUN --mount=from=``) waits there until that
stage is done (``Builder.stage_wait``), so a stage's first steps run while the stages it needs build.
The main thread only waits, so Ctrl-C and SIGTERM reach it: then, and when a stage fails, the other
stages' running steps are killed and the threads joined before the error goes on."""

from __future__ import annotations

import copy
import threading
import time

from strata.build.cache import BuildCache
from strata.build.plan import Plan
from strata.build.progress import Progress
from strata.build.state import BuildError
from strata.build.steps import Runner

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from strata.build.builder import Builder
    from strata.build.state import Stage

__all__ = ["run_stages"]


class _Worker:
    def __init__(self, b: Builder, index: int) -> None:
        from strata.engine import Engine

        self.b = copy.copy(b)
        self.b.stage_index = index
        self.b.engine = Engine(b.engine.root_dir)
        self.b.cache = BuildCache(self.b.engine)
        self.held = _Held(b.progress)
        progress = self.b.progress = self.held
        # the container records are opened by the first step that needs a container (cached steps never do)
        self.b.runner = Runner(self.b.engine, None, b.runner.network,
                               sink=lambda stream, data: progress.output(index, stream, data))  # fmt: skip
        self.b.stage_wait = self._wait_for
        self.thread = threading.Thread(target=self._main, args=(index,), name=f"stage-{index}", daemon=True)
        self.error: BaseException | None = None
        self.failed_at = 0.0

    def _main(self, index: int) -> None:
        b = self.b
        try:
            stage = b.run_stage(self.plan.stages[index])
            self._settle()
            with self.lock:
                b.finished[index] = stage
            b.progress.stage_done(index)
            with self.lock:  # the stages that need it start now, while its last step containers are
                self.lock.notify_all()  # still being removed (the build ends after them: threads joined)
        except BaseException as e:  # handed to the main thread, once the stages it needs are built: a
            self._settle()  # classic build would have shown them (or failed in them) first
            self.error, self.failed_at = e, time.monotonic()
        finally:
            try:  # its step containers removed (after a failure too) before the thread ends
                b.runner.close()
            except BaseException as e:
                if self.error is None:
                    self.error, self.failed_at = e, time.monotonic()
            b.engine.close()
            with self.lock:
                self.lock.notify_all()

    def _wait_for(self, name: str, by_index: bool) -> Stage | None:
        """The earlier stage of the build ``name`` means (as ``Builder.stage_named`` reads it), once it
        is done; None when no stage of this build is named so (an image then)."""
        b, low = self.b, name.lower()
        wanted = [i for i in self.plan.order if i < b.stage_index and (
            (self.plan.stages[i].name == low and not low.isdigit()) or (by_index and str(i) == name))]  # fmt: skip
        if not wanted:
            return None
        with self.lock:
            while wanted[0] not in b.finished:
                if b.cancelled.is_set():
                    raise BuildError("build cancelled")
                self.lock.wait(0.1)
            found = b.finished[wanted[0]]
        if self.plan.stages[b.stage_index].deps <= set(b.finished):
            self.held.release()
        return found

    def _settle(self) -> None:
        """Wait until every stage this one needs is built (its held lines then shown), or the build is
        cancelled (they are dropped: a classic build would never have started this stage)."""
        b = self.b
        with self.lock:
            while not self.plan.stages[b.stage_index].deps <= set(b.finished):
                if b.cancelled.is_set():
                    self.held.drop()
                    return
                self.lock.wait(0.1)
        self.held.release()

    def start(self, plan: Plan, lock: threading.Condition) -> None:
        self.plan, self.lock = plan, lock
        if not plan.stages[self.b.stage_index].deps:  # nothing to wait for: its lines go on as they come
            self.held.release()
        self.thread.start()


class _Held(Progress):
    """A stage's progress while stages it needs are not built yet: a classic build would not have begun
    it, so its lines wait here and go on once they are (``release``), or never (``drop``)."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.holding = progress, True
        self.items: list[tuple[str, tuple[object, ...]]] = []
        self.lock = threading.Lock()

    def step(self, stage: int, text: str) -> None:
        self._add("step", stage, text)

    def line(self, stage: int, text: str) -> None:
        self._add("line", stage, text)

    def output(self, stage: int, stream: str, data: bytes) -> None:
        self._add("output", stage, stream, data)

    def stage_done(self, stage: int) -> None:
        self._add("stage_done", stage)

    def _add(self, name: str, *args: object) -> None:
        with self.lock:
            if self.holding:
                self.items.append((name, args))
                return
        getattr(self.progress, name)(*args)

    def release(self) -> None:
        with self.lock:
            if self.holding:
                for name, args in self.items:
                    getattr(self.progress, name)(*args)
                self.items, self.holding = [], False

    def drop(self) -> None:
        with self.lock:
            self.items = []


def _ready(plan: Plan, b: Builder, started: dict[int, _Worker]) -> list[int]:
    return [i for i in plan.order if i not in started]


def _raise_first(workers: dict[int, _Worker]) -> None:
    failed = sorted((w for w in workers.values() if w.error is not None), key=lambda w: w.failed_at)
    if failed:
        raise failed[0].error  # type: ignore[misc]


def run_stages(b: Builder, plan: Plan) -> None:
    """Every stage of ``plan.order`` built; the first failure (in time) is raised."""
    lock = threading.Condition()
    workers: dict[int, _Worker] = {}
    try:
        while True:
            with lock:
                _raise_first(workers)
                done = all(i in b.finished for i in plan.order)
                ready = [] if done else _ready(plan, b, workers)
                if not ready and not done:
                    # checked and waited under one hold of the lock: a stage finishing in between
                    # cannot go unnoticed (its notify would be lost, and the build idle for 0.1 s)
                    lock.wait(0.1)
                    continue
            if done:  # the threads may still be removing step containers: the build ends after them
                for w in workers.values():
                    w.thread.join()
                _raise_first(workers)
                return
            for i in ready:
                workers[i] = _Worker(b, i)
                workers[i].start(plan, lock)
    except BaseException:
        _cancel(b, workers)
        raise


def _cancel(b: Builder, workers: dict[int, _Worker]) -> None:
    """Stop the other stages: no new step starts, running ones are killed; wait for their cleanup."""
    b.cancelled.set()
    while any(w.thread.is_alive() for w in workers.values()):
        for w in workers.values():
            w.b.runner.cancel()
        for w in workers.values():
            w.thread.join(0.2)
