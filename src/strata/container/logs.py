"""Container logs in Docker's json-file format: one ``{"log","stream","time"}`` object per line."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["JsonLogWriter", "read_log", "rfc3339nano"]

MAX_LINE = 16 * 1024


def rfc3339nano(ts: float) -> str:
    """Docker's timestamp form: ``2024-05-01T12:00:00.123456789Z`` (0 -> Go's zero time)."""
    if ts <= 0:
        return "0001-01-01T00:00:00Z"
    dt = datetime.fromtimestamp(ts, UTC)
    nanos = round((ts - int(ts)) * 1e9) % 1_000_000_000
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


class JsonLogWriter:
    """Appends output to a json-file log, one entry per line (partial lines flushed at close)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._partial: dict[str, bytes] = {}
        self.dropped = 0  # bytes of entries that could not be written (a full disk): the run goes on

    def _append(self, data: bytes) -> None:
        """Append whole entries; on a write error (ENOSPC) drop them as Docker's log driver does."""
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

    def write(self, stream: str, data: bytes) -> None:
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

    @staticmethod
    def _entry(stream: str, chunk: bytes) -> bytes:
        obj = {"log": chunk.decode("utf-8", "replace"), "stream": stream, "time": rfc3339nano(time.time())}
        return json.dumps(obj, separators=(",", ":")).encode() + b"\n"

    def close(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._append(self._entry(stream, rest))
        self._partial.clear()
        os.close(self._fd)


def _parse(line: bytes) -> tuple[str, str, str] | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    return str(obj.get("stream", "stdout")), str(obj.get("log", "")), str(obj.get("time", ""))


def read_log(
    path: Path,
    *,
    tail: int | None = None,
    follow: bool = False,
    still_running: Callable[[], bool] | None = None,
) -> Iterator[tuple[str, str, str]]:
    """Yield (stream, text, time) entries; ``follow`` keeps reading while the container runs."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - streamed across yields
    except FileNotFoundError:
        return
    with f:
        lines: deque[bytes] | list[bytes]
        if tail is not None:
            lines = deque(f, maxlen=tail) if tail > 0 else deque()
            if tail == 0:
                f.seek(0, os.SEEK_END)
        else:
            lines = []
        for line in lines:
            entry = _parse(line)
            if entry:
                yield entry
        if tail is None:
            for line in f:
                entry = _parse(line)
                if entry:
                    yield entry
        if not follow:
            return
        pending = b""
        while True:
            chunk = f.readline()
            if chunk:
                pending += chunk
                if pending.endswith(b"\n"):
                    entry = _parse(pending)
                    pending = b""
                    if entry:
                        yield entry
                continue
            if still_running is not None and not still_running():
                return
            time.sleep(0.1)
