"""An in-process ``strata`` runner for tests that only need a command's output and exit code.

``run_cli("images", root=...)`` calls :func:`strata.cli.main.main` in this process with its own
stdin/stdout/stderr and ``STRATA_ROOT``, and returns a :class:`subprocess.CompletedProcess` shaped like
the one ``subprocess.run([sys.executable, "-m", "strata", ...])`` gives -- without the 100 ms an
interpreter start costs. Tests that kill, race or run containers keep the subprocess runner: those need
a process of their own.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["run_cli"]

_LOCK = threading.Lock()  # sys.std* and the environment are process-wide


class _Stream(io.TextIOWrapper):
    """A text stream over bytes, like a real ``sys.stdout`` (``.buffer`` for binary output)."""

    def __init__(self, data: bytes = b"") -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8", errors="surrogateescape", newline="\n",
                         write_through=True)

    def value(self) -> bytes:
        self.flush()
        raw = self.buffer
        assert isinstance(raw, io.BytesIO)
        return raw.getvalue()

    def isatty(self) -> bool:
        return False


@contextmanager
def _environment(root: Path | None, env: dict[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    if root is not None:
        os.environ["STRATA_ROOT"] = str(root)
    os.environ.update(env or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(
    *args: str,
    root: Path | None = None,
    input: str | bytes | None = None,
    text: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``strata ARGS`` in this process; stdout/stderr as ``str`` (``bytes`` when ``text=False``)."""
    from strata.cli.main import main

    data = input.encode() if isinstance(input, str) else (input or b"")
    stdin, stdout, stderr = _Stream(data), _Stream(), _Stream()
    with _LOCK, _environment(root, env):
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
        try:
            try:
                code = main(list(args))
            except SystemExit as e:  # a handler that exits as a script would
                code = e.code if isinstance(e.code, int) else 1
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
    out, err = stdout.value(), stderr.value()
    if text:
        return subprocess.CompletedProcess(["strata", *args], code, out.decode(errors="replace"),
                                           err.decode(errors="replace"))
    return subprocess.CompletedProcess(["strata", *args], code, out, err)  # type: ignore[arg-type]
