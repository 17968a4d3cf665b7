"""A rootless build killed -9 at spread-out moments (context sent, COPY, RUN, the layer tar written
and hashed, COPY --from through the layers' overlay, the commit) never leaves a visible half-written
thing: every blob's sha256 is its name, every listed image saves (all its blobs there and whole), no
mount is left once the watchdog ran, and the next build succeeds. The kill moments differ with the
machine's load; the checks hold at any of them."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = pytest.mark.timeout(600)

DOCKERFILE = """FROM kl:base AS a
COPY big /big
RUN head -c 700000 /dev/urandom > /r && mkdir -p /d && echo 1 > /d/f
FROM kl:base
COPY --from=a /big /big2
COPY --from=a /d /d
RUN for i in 1 2 3 4 5 6 7 8; do cat /big2; done > /big3
"""


def _build_pids(user: User) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and entry.stat().st_uid == user.uid
                    and b"-m\0strata\0build\0" in (entry / "cmdline").read_bytes()):  # fmt: skip
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _mounts(user: User) -> list[str]:
    info = user.strata("unshare", "cat", "/proc/self/mountinfo").stdout
    return [line.split()[4] for line in info.splitlines() if line.split()[4].startswith(str(user.home))]


def _check_store(user: User, store: Path) -> None:
    for blob in (store / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
    for image in user.strata("images", "-aq", "--no-trunc").stdout.split():
        user.strata("save", "-o", str(user.home / "check.tar"), image)


def test_rootless_build_killed_at_any_moment_leaves_a_sound_store(user: User) -> None:
    import_busybox(user, "kl:base")
    ctx = user.home / "ctx-kl"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "big").write_bytes(os.urandom(1 << 20))
    for p in (ctx, ctx / "Dockerfile", ctx / "big"):
        os.chown(p, user.uid, user.gid)
    store = user.home / ".local" / "share" / "strata"
    start = time.monotonic()
    user.strata("build", "-q", "--no-cache", "--network", "none", "-t", "kl:whole", str(ctx), timeout=300)
    whole = time.monotonic() - start
    killed = 0
    for i, share in enumerate((0.15, 0.3, 0.45, 0.6, 0.75, 0.9)):
        proc = subprocess.Popen(user.argv("build", "-q", "--no-cache", "--network", "none", "-t", f"kl:{i}", str(ctx)),
                                cwd=user.home, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        user.procs.append(proc)
        time.sleep(whole * share)
        pids = _build_pids(user)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        killed += bool(pids) and proc.wait(timeout=60) != 0
        proc.wait(timeout=60)
        deadline = time.monotonic() + 90  # the watchdog removes the step container and unmounts
        while time.monotonic() < deadline and (user.strata("ps", "-aq").stdout or _mounts(user)):
            time.sleep(0.5)
        assert user.strata("ps", "-aq").stdout == ""
        assert _mounts(user) == []
        _check_store(user, store)
    assert killed >= 1  # builds were killed midway (not all perhaps: the load changes their pace)
    user.strata("build", "-q", "--no-cache", "--network", "none", "-t", "kl:after", str(ctx), timeout=300)
    done = user.strata("run", "--rm", "--network", "none", "kl:after", "sh", "-c", "wc -c < /big3; cat /d/f")
    assert done.stdout.split() == [str(8 << 20), "1"]
