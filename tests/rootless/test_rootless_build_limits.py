"""A rootless build given step-container limits its cgroup cannot take (cgroup v1, or controllers not
delegated): each step container is made without them, with the daemon's warnings in the classic
builder's words (`` ---> [Warning] …`` before ``Running in``), and the build succeeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

from strata.rootless import cgroups

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]

MEMORY = "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded."
SHARES = "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."


def test_a_rootless_build_warns_of_the_limits_it_drops(user: User) -> None:
    have = cgroups.delegated_controllers(user.uid)
    if {"memory", "cpu"} & have:
        pytest.skip("the user's cgroup takes these limits here")
    import_busybox(user, "limits:base")
    ctx = user.home / "ctx-limits"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM limits:base\nENV A=b\nRUN echo ran\n")
    shutil.chown(ctx, user.uid, user.gid)
    shutil.chown(ctx / "Dockerfile", user.uid, user.gid)
    out = user.strata("build", "--no-cache", "--network", "none", "-m", "64m", "-c", "512", str(ctx), timeout=300).stdout
    lines = out.splitlines()
    warned = [f" ---> [Warning] {MEMORY}", f" ---> [Warning] {SHARES}"]
    for step in ("Step 2/3 : ENV A=b", "Step 3/3 : RUN echo ran"):  # the metadata step's container and the RUN's
        at = lines.index(step)
        assert lines[at + 1 : at + 3] == warned, out
        assert lines[at + 3].startswith(" ---> Running in "), out
    assert "ran" in lines
    plain = user.strata("build", "--no-cache", "--network", "none", str(ctx), timeout=300).stdout
    assert "[Warning]" not in plain
