"""A rootless build killed -9 in the middle of a RUN (after a ``COPY --from`` read its source's layers):
its watchdog, in the user's namespaces, removes the step container (its processes end) and unmounts
what the build mounted; no image is tagged, and the next build works."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = pytest.mark.timeout(300)

DOCKERFILE = """FROM kill:base AS a
RUN echo a > /a
FROM kill:base
COPY --from=a /a /a
RUN echo started >&2; sleep 300
"""


def _user_pids(user: User, needle: str) -> list[int]:
    """The user's processes whose command line holds ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != user.uid:
                continue
            if needle in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _mounts(user: User) -> list[str]:
    info = user.strata("unshare", "cat", "/proc/self/mountinfo").stdout
    return [line.split()[4] for line in info.splitlines() if line.split()[4].startswith(str(user.home))]


def test_rootless_build_killed_leaves_nothing(user: User) -> None:
    import_busybox(user, "kill:base")
    ctx = user.home / "ctx-kill"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    for p in (ctx, ctx / "Dockerfile"):
        os.chown(p, user.uid, user.gid)
    proc = subprocess.Popen(user.argv("build", "--network", "none", "-t", "kill:1", str(ctx)), cwd=user.home,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    user.procs.append(proc)
    assert proc.stdout is not None
    # a RUN's stderr reaches the build's stdout between ESC[91m and ESC[0m, as Docker's CLI shows it
    while b"started\n" not in (line := proc.stdout.readline()):
        assert line, "the build ended before its RUN started"
    assert user.strata("ps", "-aq").stdout.strip() != ""  # the RUN's container
    assert _user_pids(user, "sleep 300")
    builds = _user_pids(user, "-m strata build")
    assert len(builds) == 1
    os.kill(builds[0], signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    deadline = time.monotonic() + 90  # a loaded machine: the watcher's interpreter may be slow to start
    while time.monotonic() < deadline and (user.strata("ps", "-aq").stdout or _user_pids(user, "sleep 300")):
        time.sleep(0.5)
    assert user.strata("ps", "-aq").stdout == ""
    assert _user_pids(user, "sleep 300") == []
    assert _mounts(user) == []
    assert user.strata("images", "-q", "kill:1").stdout == ""
    (ctx / "Dockerfile").write_text(DOCKERFILE.replace("sleep 300", "true"))
    user.strata("build", "-q", "--network", "none", "-t", "kill:1", str(ctx))
    assert user.strata("images", "-q", "kill:1").stdout.strip() != ""
