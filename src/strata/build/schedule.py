"""The stages of a build run concurrently: each in a thread of its own once the stages it needs are
done, on a copy of the builder with its own store connections (SQLite connections are not shared
between threads). The main thread only waits, so Ctrl-C and SIGTERM reach it: then, and when a stage
fails, the other stages' running steps are killed and the threads joined before the error goes on."""

from __future__ import annotations

import copy
import threading
import time

from strata.build.cache import BuildCache
from strata.build.plan import Plan
from strata.build.steps import Runner

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from strata.build.builder import Builder

__all__ = ["run_stages"]


class _Worker:
    def __init__(self, b: Builder, index: int) -> None:
        from strata.engine import Engine

        self.b = copy.copy(b)
        self.b.stage_index = index
        self.b.engine = Engine(b.engine.root_dir)
        self.b.cache = BuildCache(self.b.engine)
        progress = b.progress
        # the container records are opened by the first step that needs a container (cached steps never do)
        self.b.runner = Runner(self.b.engine, None, b.runner.network,
                               sink=lambda stream, data: progress.output(index, stream, data))  # fmt: skip
        self.thread = threading.Thread(target=self._main, args=(index,), name=f"stage-{index}", daemon=True)
        self.error: BaseException | None = None
        self.failed_at = 0.0

    def _main(self, index: int) -> None:
        b = self.b
        try:
            stage = b.run_stage(self.plan.stages[index])
            with self.lock:
                b.finished[index] = stage
            b.progress.stage_done(index)
            with self.lock:  # the stages that need it start now, while its last step containers are
                self.lock.notify_all()  # still being removed (the build ends after them: threads joined)
        except BaseException as e:  # handed to the main thread
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

    def start(self, plan: Plan, lock: threading.Condition) -> None:
        self.plan, self.lock = plan, lock
        self.thread.start()


def _ready(plan: Plan, b: Builder, started: dict[int, _Worker]) -> list[int]:
    return [i for i in plan.order if i not in started and plan.stages[i].deps <= set(b.finished)]


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
