"""A huge context is streamed, never held in memory: a tar of 384 MiB piped into ``strata build -``
(generated on the fly), its big file hashed for the cache and copied into a layer, while the build's
peak memory stays far below the file's size."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import IO

from build_helpers import BUSYBOX, Strata

SIZE = 384 << 20
LIMIT_KIB = 160 << 10  # the build's peak RSS: far less than the file
# The build runs as the child of a small launcher that reports the child's peak RSS: a process forked
# (or vforked) from pytest carries pytest's own RSS as the floor of its ru_maxrss across exec, so
# measuring a direct child would measure how much the tests before this one made pytest grow.
_LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\nstrata-test-maxrss {usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _write_context(out: IO[bytes]) -> None:
    """A context tar written chunk by chunk: the Dockerfile and a big file of pseudo-random blocks."""
    dockerfile = f"FROM {BUSYBOX}\nCOPY big /big\nRUN wc -c < /big > /size\n".encode()
    with tarfile.open(fileobj=out, mode="w|") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, _Chunks(dockerfile, len(dockerfile)))
        info = tarfile.TarInfo("big")
        info.size = SIZE
        tar.addfile(info, _Chunks(os.urandom(1 << 20), SIZE))
    out.close()


class _Chunks:
    """``size`` bytes read as repeats of ``block``."""

    def __init__(self, block: bytes, size: int) -> None:
        self.block, self.left = block, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = (self.block * (n // len(self.block) + 1))[:n]
        self.left -= n
        return data


def test_huge_context_is_streamed(strata: Strata, busybox: str, root: Path) -> None:
    env = dict(os.environ, STRATA_ROOT=str(root))
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, "-m", "strata", "build", "-t", "huge:1", "-"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    writer = threading.Thread(target=_write_context, args=(proc.stdin,))
    writer.start()
    out: list[bytes] = []
    readers = [threading.Thread(target=lambda s=s: out.append(s.read())) for s in (proc.stdout, proc.stderr)]
    for t in readers:
        t.start()
    proc.wait()
    writer.join()
    for t in readers:
        t.join()
    proc.stdout.close()
    proc.stderr.close()
    text = b"".join(out)
    assert proc.returncode == 0, out
    maxrss = int(text.rsplit(b"strata-test-maxrss ", 1)[1].split()[0])
    print(f"peak RSS of the build: {maxrss} KiB for a {SIZE >> 20} MiB file")
    assert b"Sending build context to Docker daemon  402.7MB" in text
    assert maxrss < LIMIT_KIB, f"peak RSS {maxrss} KiB"
    assert strata("run", "--rm", "huge:1", "cat", "/size").stdout.strip() == str(SIZE)
    strata("rmi", "huge:1")
