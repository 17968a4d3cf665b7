"""Container logs in Docker's json-file format: one ``{"log","stream","time"}`` object per line (with
``attrs`` when ``--log-opt labels=/env=`` ask for them), rotated as Docker's driver rotates them
(``max-size``/``max-file``: ``<id>-json.log.1`` ...); the ``none`` driver keeps nothing."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["JsonLogWriter", "LogEntry", "log_files", "read_entries", "read_log", "rfc3339nano"]

MAX_LINE = 16 * 1024


def rfc3339nano(ts: float) -> str:
    """Docker's timestamp form: ``2024-05-01T12:00:00.123456789Z`` (0 -> Go's zero time)."""
    if ts <= 0:
        return "0001-01-01T00:00:00Z"
    secs = int(ts)  # whole seconds from gmtime: datetime rounded to microseconds, a second too far at .9999995
    nanos = round((ts - secs) * 1e9)
    if nanos == 1_000_000_000:  # a fraction that rounds up is the next second's
        secs, nanos = secs + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


class JsonLogWriter:
    """Appends output to a json-file log, one entry per line (partial lines flushed at close)."""

    def __init__(self, path: Path, *, max_size: int = -1, max_files: int = 1, attrs: dict[str, str] | None = None,
                 enabled: bool = True) -> None:
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640) if enabled else -1
        self._size = os.fstat(self._fd).st_size if enabled else 0
        self._max_size, self._max_files = max_size, max_files
        self._attrs = dict(attrs or {})
        self._partial: dict[str, bytes] = {}
        self.dropped = 0  # bytes of entries that could not be written (a full disk): the run goes on

    @classmethod
    def for_container(cls, path: Path, config: dict[str, Any], host_config: dict[str, Any]) -> JsonLogWriter:
        """The writer of a container's ``HostConfig.LogConfig`` (json-file, or none: nothing kept)."""
        from strata.container.logopts import log_attrs, rotation

        log_cfg = dict(host_config.get("LogConfig") or {"Type": "json-file", "Config": {}})
        if log_cfg.get("Type") == "none":
            return cls(path, enabled=False)
        size, files = rotation(dict(log_cfg.get("Config") or {}))
        return cls(path, max_size=size, max_files=files, attrs=log_attrs(config, log_cfg))

    def _rotate(self) -> None:
        """Docker's checkCapacityAndRotate: at max-size the file moves to ``.1`` (``.1`` to ``.2`` ...,
        the oldest dropped past max-file) and a new one starts; with one file it is truncated."""
        for i in range(self._max_files - 1, 1, -1):
            try:
                os.replace(f"{self._path}.{i - 1}", f"{self._path}.{i}")
            except FileNotFoundError:
                pass
        os.close(self._fd)
        if self._max_files > 1:
            os.replace(self._path, f"{self._path}.1")
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = 0

    def _append(self, data: bytes) -> None:
        """Append whole entries; on a write error (ENOSPC) drop them as Docker's log driver does."""
        if self._fd < 0:
            return
        if self._max_size > 0:
            for line in data.splitlines(keepends=True):
                if self._size >= self._max_size:
                    self._rotate()
                self._write(line)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            n = os.write(self._fd, data)
        except OSError:
            self.dropped += len(data)
            return
        if n < len(data):  # a short write on a filling disk: cut back to whole lines
            try:
                os.ftruncate(self._fd, os.lseek(self._fd, 0, os.SEEK_END) - n)
            except OSError:
                pass
            self.dropped += len(data)
            return
        self._size += n

    def write(self, stream: str, data: bytes) -> None:
        if self._fd < 0:  # nothing kept (--log-driver none, a build step): no entries made to be dropped
            return
        buf = self._partial.get(stream, b"") + data
        out = []
        while True:
            nl = buf.find(b"\n")
            if nl < 0 or nl >= MAX_LINE:
                if len(buf) >= MAX_LINE:
                    out.append(self._entry(stream, buf[:MAX_LINE]))
                    buf = buf[MAX_LINE:]
                    continue
                break
            out.append(self._entry(stream, buf[: nl + 1]))
            buf = buf[nl + 1 :]
        self._partial[stream] = buf
        if out:
            self._append(b"".join(out))

    def _entry(self, stream: str, chunk: bytes) -> bytes:
        obj: dict[str, Any] = {"log": chunk.decode("utf-8", "replace"), "stream": stream}
        if self._attrs:
            obj["attrs"] = self._attrs
        obj["time"] = rfc3339nano(time.time())
        return json.dumps(obj, separators=(",", ":")).encode() + b"\n"

    def close(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._append(self._entry(stream, rest))
        self._partial.clear()
        if self._fd >= 0:
            os.close(self._fd)


class LogEntry(NamedTuple):
    stream: str
    text: str
    time: str
    attrs: dict[str, str]


def _parse(line: bytes) -> LogEntry | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    attrs = obj.get("attrs")
    return LogEntry(str(obj.get("stream", "stdout")), str(obj.get("log", "")), str(obj.get("time", "")),
                    {str(k): str(v) for k, v in attrs.items()} if isinstance(attrs, dict) else {})


def log_files(path: Path) -> list[Path]:
    """The log's files, oldest first: the rotated ``.N`` ... ``.1``, then the live one."""
    rotated = []
    i = 1
    while Path(f"{path}.{i}").exists():
        rotated.append(Path(f"{path}.{i}"))
        i += 1
    return [*reversed(rotated), path]


def _lines(paths: list[Path]) -> Iterator[bytes]:
    for p in paths:
        try:
            with open(p, "rb") as f:
                yield from f
        except FileNotFoundError:
            continue


def _follow(
    f: Any, path: Path, still_running: Callable[[], bool] | None, idle: Callable[[], object] | None = None
) -> Iterator[LogEntry]:
    """New entries of the live file until the container stops (reopened when it is rotated); with no
    new data, ``idle()`` waits (default: 0.1 s; a caller's can return at once when the container ends)."""
    pending = b""
    try:
        while True:
            chunk = f.readline()
            if chunk:
                pending += chunk
                if pending.endswith(b"\n"):
                    entry, pending = _parse(pending), b""
                    if entry:
                        yield entry
                continue
            if _rotated(f, path):
                f.close()
                f = open(path, "rb")  # noqa: SIM115 - streamed across yields
                continue
            if still_running is not None and not still_running():
                return
            if idle is None:
                time.sleep(0.1)
            else:
                idle()
    finally:
        f.close()


def _rotated(f: Any, path: Path) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except OSError:
        return False


def read_entries(
    path: Path,
    *,
    tail: int | None = None,
    follow: bool = False,
    still_running: Callable[[], bool] | None = None,
    idle: Callable[[], object] | None = None,
) -> Iterator[LogEntry]:
    """The log's entries over its rotated files (the last ``tail`` of them); ``follow`` keeps
    reading the live file, from where that left off, while the container runs."""
    try:
        live = open(path, "rb")  # noqa: SIM115 - streamed across yields
    except FileNotFoundError:
        return
    try:
        rotated = log_files(path)[:-1]
        lines: Any = itertools.chain(_lines(rotated), iter(live.readline, b""))
        if tail is not None:
            lines = deque(lines, maxlen=tail) if tail > 0 else deque(lines, maxlen=0)
        for line in lines:
            entry = _parse(line)
            if entry:
                yield entry
        if follow:
            yield from _follow(live, path, still_running, idle)
    finally:
        live.close()


def read_log(
    path: Path,
    *,
    tail: int | None = None,
    follow: bool = False,
    still_running: Callable[[], bool] | None = None,
) -> Iterator[tuple[str, str, str]]:
    """Yield (stream, text, time) entries; ``follow`` keeps reading while the container runs."""
    for entry in read_entries(path, tail=tail, follow=follow, still_running=still_running):
        yield entry.stream, entry.text, entry.time
