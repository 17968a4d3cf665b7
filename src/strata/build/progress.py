"""What a build shows while it runs. ``ClassicProgress``: Docker's classic builder lines, stages that
run concurrently kept apart (a stage's lines wait, in memory or a spooled file, until the stages before
it are done, so the output reads as a sequential build). ``TtyProgress``: a live, compact view redrawn
in place on a terminal (BuildKit's), one line per step with its time, the running step's last output."""

from __future__ import annotations

import os
import threading
import time

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import IO, TextIO

__all__ = ["ClassicProgress", "Progress", "TtyProgress"]

USING_CACHE = " ---> Using cache"


class Progress:
    """Events of a build; stage ``-1`` is what comes before the first FROM (meta ARGs)."""

    def begin(self, order: list[int], names: dict[int, tuple[str, int]], total: int) -> None:
        """The stages that run (in file order), each one's label and number of steps."""

    def step(self, stage: int, text: str) -> None:
        """A ``Step N/M : INSTRUCTION`` began."""

    def line(self, stage: int, text: str) -> None:
        """One of the builder's own lines (`` ---> …``, warnings)."""

    def output(self, stage: int, stream: str, data: bytes) -> None:
        """A RUN step's output."""

    def stage_done(self, stage: int) -> None:
        """Everything of ``stage`` has been reported."""

    def close(self, error: str | None = None) -> None:
        """The build ended (``error``: why it failed)."""


class _Buffer:
    """A waiting stage's lines: in memory, spilled to a temporary file past 1 MiB."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self.size = 0
        self.file: IO[bytes] | None = None

    def add(self, kind: str, data: bytes) -> None:
        self.size += len(data)
        if self.file is None and self.size > 1 << 20:
            import tempfile  # past 1 MiB only (a cached rebuild never loads it)

            self.file = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - closed by replay()
        if self.file is not None:
            head = kind.encode() + b" " + str(len(data)).encode() + b"\n"
            self.file.write(head + data)
        else:
            self.items.append((kind, data))

    def replay(self) -> list[tuple[str, bytes]]:
        out = list(self.items)
        if self.file is not None:
            self.file.seek(0)
            while head := self.file.readline():
                kind, size = head.decode().split()
                out.append((kind, self.file.read(int(size))))
            self.file.close()
        return out


class ClassicProgress(Progress):
    """Docker's classic lines to ``out``, RUN output to the ``stdout``/``stderr`` fds (None: dropped)."""

    def __init__(self, out: TextIO, stdout: int | None, stderr: int | None, *, quiet: bool = False,
                 quiet_errors: int | None = None) -> None:  # fmt: skip
        """``quiet``: nothing shown; with ``quiet_errors`` (an fd), a failed build's output is written
        there at its end (Docker's ``-q`` keeps the output and shows it on stderr when the build fails)."""
        self.out, self.fds, self.quiet = out, {"stdout": stdout, "stderr": stderr}, quiet
        self.quiet_errors = quiet_errors
        self.stderr_on_stdout = False  # Docker's CLI: a step's stderr on stdout, each chunk in ESC[91m … ESC[0m
        self.kept = _Buffer() if quiet and quiet_errors is not None else None
        self.order: list[int] = []
        self.done: set[int] = set()
        self.waiting: dict[int, _Buffer] = {}
        self.lock = threading.Lock()

    def _front(self) -> int | None:
        return next((s for s in self.order if s not in self.done), None)

    def _emit(self, kind: str, data: bytes) -> None:
        if self.kept is not None:
            self.kept.add(kind, data + b"\n" if kind == "line" else data)
            return
        if kind == "line":
            if not self.quiet:
                self.out.write(data.decode(errors="replace") + "\n")
                self.out.flush()
            return
        fd = self.fds.get(kind)
        if fd is not None:
            from strata.container.monitor import write_all

            write_all(fd, data)

    def _add(self, stage: int, kind: str, data: bytes) -> None:
        with self.lock:
            front = self._front()
            if front is None or stage == front or stage not in self.order:
                self._emit(kind, data)
            else:
                self.waiting.setdefault(stage, _Buffer()).add(kind, data)

    def begin(self, order: list[int], names: dict[int, tuple[str, int]], total: int) -> None:
        with self.lock:
            self.order = [-1, *order]

    def step(self, stage: int, text: str) -> None:
        self._add(stage, "line", text.encode(errors="surrogateescape"))

    def line(self, stage: int, text: str) -> None:
        self._add(stage, "line", text.encode(errors="surrogateescape"))

    def output(self, stage: int, stream: str, data: bytes) -> None:
        if stream == "stderr" and self.stderr_on_stdout:  # the daemon's stderr writer marks each chunk
            stream, data = "stdout", b"\x1b[91m" + data + b"\x1b[0m"
        self._add(stage, stream, data)

    def stage_done(self, stage: int) -> None:
        with self.lock:
            self.done.add(stage)
            self._flush_ready()

    def _flush_ready(self) -> None:
        """The stages now in front print what they wrote while waiting (a done stage, all of it)."""
        for stage in self.order:
            buf = self.waiting.pop(stage, None)
            for kind, data in buf.replay() if buf else []:
                self._emit(kind, data)
            if stage not in self.done:
                return

    def close(self, error: str | None = None) -> None:
        with self.lock:  # a failed build: what the other stages printed still comes out, in order
            for stage in self.order:
                buf = self.waiting.pop(stage, None)
                for kind, data in buf.replay() if buf else []:
                    self._emit(kind, data)
            kept, self.kept = self.kept, None
            if kept is not None and error is not None and self.quiet_errors is not None:
                from strata.container.monitor import write_all

                for _, data in kept.replay():
                    write_all(self.quiet_errors, data)


class _Step:
    def __init__(self, label: str, start: float, end: float | None = None) -> None:
        self.label, self.start, self.end = label, start, end
        self.cached = False
        self.failed = False
        self.tail: list[str] = []
        self.partial = ""


class TtyProgress(Progress):
    """The live view: ``[+] Building 3.1s (5/9)`` then a line per started step, redrawn in place
    (ANSI cursor movement) at most every 100 ms; only as many lines as the terminal has rows."""

    TAIL = 6

    def __init__(self, out: TextIO, fd: int) -> None:
        self.out, self.fd = out, fd
        self.names: dict[int, tuple[str, int]] = {}
        self.total = 0
        self.steps: list[_Step] = []
        self.current: dict[int, _Step] = {}
        self.counts: dict[int, int] = {}
        self.t0 = time.monotonic()
        self.drawn = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def begin(self, order: list[int], names: dict[int, tuple[str, int]], total: int) -> None:
        with self.lock:
            self.names, self.total = dict(names), total

    def _finish(self, stage: int) -> None:
        cur = self.current.pop(stage, None)
        if cur is not None and cur.end is None:
            cur.end = time.monotonic()

    def step(self, stage: int, text: str) -> None:
        with self.lock:
            self._finish(stage)
            n = self.counts[stage] = self.counts.get(stage, 0) + 1
            label, count = self.names.get(stage, ("", 0))
            instruction = text.split(" : ", 1)[-1]
            st = _Step(f"[{label + ' ' if label else ''}{n}/{count}] {instruction}", time.monotonic())
            self.steps.append(st)
            self.current[stage] = st

    def line(self, stage: int, text: str) -> None:
        with self.lock:
            cur = self.current.get(stage)
            if cur is not None and text == USING_CACHE:
                cur.cached = True
            elif text.startswith("Sending build context"):
                now = time.monotonic()
                size = text.rstrip("\r").rsplit(" ", 1)[-1]
                self.steps.append(_Step(f"[internal] load build context ({size})", self.t0, now))

    def output(self, stage: int, stream: str, data: bytes) -> None:
        with self.lock:
            cur = self.current.get(stage)
            if cur is None:
                return
            lines = (cur.partial + data.decode(errors="replace")).replace("\r", "\n").split("\n")
            cur.partial = lines.pop()
            cur.tail = [*cur.tail, *(ln for ln in lines if ln)][-self.TAIL :]

    def stage_done(self, stage: int) -> None:
        with self.lock:
            self._finish(stage)

    def close(self, error: str | None = None) -> None:
        self.stop.set()
        self.thread.join(5)
        with self.lock:
            for stage in list(self.current):
                cur = self.current[stage]
                cur.failed = error is not None
                self._finish(stage)
            self._draw(final=True)
            failed = [s for s in self.steps if s.failed and (s.tail or s.partial)]
            for s in failed[:1]:  # the failed step's last output, as BuildKit shows it
                self.out.write(f"------\n > {s.label}:\n")
                for ln in [*s.tail, *([s.partial] if s.partial else [])]:
                    self.out.write(f"#{len(self.steps)} {ln}\n")
                self.out.write("------\n")
            self.out.flush()

    def _loop(self) -> None:
        while not self.stop.wait(0.1):
            with self.lock:
                self._draw(final=False)

    def _size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.fd)
            return size.lines, size.columns
        except OSError:
            return 24, 80

    def _render(self, final: bool) -> list[str]:
        now = time.monotonic()
        done = sum(1 for s in self.steps if s.end is not None and not s.label.startswith("[internal]"))
        lines = [f"[+] Building {now - self.t0:.1f}s ({done}/{self.total}){' FINISHED' if final else ''}"]
        for s in self.steps:
            elapsed = (s.end or now) - s.start
            mark = "CACHED " if s.cached else ("ERROR " if s.failed else "")
            lines.append(f" => {mark}{s.label}\t{elapsed:.1f}s")
            if s.end is None and not final:
                lines.extend(f" => => # {t}" for t in s.tail)
        return lines

    def _draw(self, final: bool) -> None:
        rows, cols = self._size()
        lines = self._render(final)
        if not final and len(lines) > rows - 1:  # compact: the header and the latest lines that fit
            lines = [lines[0], *lines[len(lines) - (rows - 2) :]]
        text = f"\x1b[{self.drawn}F\x1b[J" if self.drawn else ""
        for ln in lines:
            label, _, elapsed = ln.partition("\t")
            width = max(10, cols - len(elapsed) - 1)
            shown = label[:width].ljust(width) + (" " + elapsed if elapsed else "") if elapsed else label[: cols - 1]
            text += "\x1b[2K" + shown + "\n"
        self.out.write(text)
        self.out.flush()
        self.drawn = len(lines)
