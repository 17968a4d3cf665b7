"""``RUN --mount=type=cache,sharing=…`` and ``type=tmpfs,size=`` as BuildKit does them: two stages that
build at the same time with one cache: ``shared`` both use it at once, ``locked`` one after the other
(the second waits), ``private`` the second gets a fresh instance of its own; a tmpfs is a real tmpfs
(executable, in the step's own mount namespace), ``size=`` its limit (writing past it fails with ENOSPC), a size go-units' ``RAMInBytes`` reads (the
Dockerfile frontend 1.3's; Docker 20.10's built-in 1.2 does not know the key, see the last test)."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata, mounts_under

SHOW = " | sed 's/^/SHOW /'"


def _two_stages(sharing: str, cid: str) -> str:
    """Stages ``a`` and ``b`` (independent: built at once) each write into the cache around a wait; the last
    stage shows what the cache recorded. Shared or private, each waits (at most 60 s) until the other has
    written its start (marked in a second, shared cache): a fixed sleep to overlap in was outlasted by the
    second stage's container start on a loaded machine. Locked, one waits for the other: a 4 s sleep."""
    mount = f"--mount=type=cache,id={cid},target=/c,sharing={sharing}"
    wait = "sleep 4"
    if sharing != "locked":
        mount += f" --mount=type=cache,id={cid}-sync,target=/sync"
        wait = ("touch /sync/{s} && i=0 && while [ ! -e /sync/{o} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1));"
                " done && [ -e /sync/{o} ]")
    stage = (
        "FROM {bb} AS {s}\n"
        f"RUN {{m}} echo start-{{s}} >> /c/log && ls /c > /seen-{{s}}-1 && {wait} && ls /c > /seen-{{s}}-2"
        " && echo end-{s} >> /c/log\n"
    )
    return (
        stage.format(bb=BUSYBOX, s="a", o="b", m=mount) + stage.format(bb=BUSYBOX, s="b", o="a", m=mount)
        + f"FROM {BUSYBOX}\nCOPY --from=a /seen-a-2 /\nCOPY --from=b /seen-b-2 /\n"
        f"RUN --mount=type=cache,id={cid},target=/c,sharing=shared (cat /c/log; cat /seen-a-2 /seen-b-2){SHOW}\n"
    )  # fmt: skip


def _shown(output: str) -> list[str]:
    return [re.sub(r"^.*?SHOW ", "", line) for line in output.splitlines() if "SHOW " in line and "RUN " not in line]


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _judge(shown: list[str], sharing: str) -> None:
    log, seen = shown[:4], shown[4:]
    starts = sorted(i for i, line in enumerate(log) if line.startswith("start-"))
    if sharing == "locked":  # one after the other: start-x end-x start-y end-y
        assert starts == [0, 2] and log[0][6:] == log[1][4:] and log[2][6:] == log[3][4:], shown
        return
    assert starts == [0, 1] and seen == ["log", "log"], shown  # both at once, in the same cache


@pytest.mark.parametrize("sharing", ["shared", "locked", "private"])
def test_cache_sharing(strata: Strata, busybox: str, tmp_path: Path, sharing: str) -> None:
    ctx = _ctx(tmp_path, _two_stages(sharing, f"c-{uuid.uuid4().hex[:8]}"))
    shown = _shown(strata("build", "--no-cache", str(ctx)).stdout)
    if sharing == "private":
        assert len(shown) == 4 and {shown[0][6:], shown[1][4:]} <= {"a", "b"}, shown
        assert shown[0][6:] == shown[1][4:] and shown[2:] == ["log", "log"], shown
        return
    _judge(shown, sharing)


def test_a_private_cache_is_kept(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """A private mount nobody else uses is the cache itself (what earlier builds left)."""
    cid = f"c-{uuid.uuid4().hex[:8]}"
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nARG N\nRUN --mount=type=cache,id={cid},target=/c,sharing=private"
                         f" (echo $N >> /c/n; cat /c/n){SHOW}\n")  # fmt: skip
    strata("build", "--build-arg", "N=1", str(ctx))
    assert _shown(strata("build", "--build-arg", "N=2", str(ctx)).stdout) == ["1", "2"]


TMPFS = (
    f"FROM {BUSYBOX}\n"
    "RUN --mount=type=tmpfs,target=/t,size=1m (grep ' /t ' /proc/mounts | cut -d' ' -f3,4; stat -c %a /t;"
    f" head -c 1048576 /dev/zero > /t/fits && echo fits; dd if=/dev/zero of=/t/more bs=1 count=1 || echo full) 2>&1{SHOW}\n"
    f"RUN --mount=type=tmpfs,target=/u,size=64k (df -k /u | tail -1 | tr -s ' ' | cut -d' ' -f2){SHOW}\n"
    "RUN --mount=type=tmpfs,target=/v (grep ' /v ' /proc/mounts | cut -d' ' -f3; stat -c %a /v;"
    f" cp /bin/busybox /v/echo && /v/echo exec) 2>&1{SHOW}\n"
)


def test_tmpfs_size(strata: Strata, busybox: str, root: Path, tmp_path: Path) -> None:
    r = strata("build", "-t", "tmpfs:1", str(_ctx(tmp_path, TMPFS)))
    shown = _shown(r.stdout)
    assert shown[0].startswith("tmpfs rw,nosuid,nodev,"), shown
    assert "size=1024k" in shown[0], shown
    assert shown[1:] == ["1777", "fits", "dd: error writing '/t/more': No space left on device", "1+0 records in",
                         "0+0 records out", "full", "64", "tmpfs", "1777", "exec"], shown  # fmt: skip
    assert mounts_under(root) == []
    # BuildKit's: a tmpfs's mount point stays in the layer as an empty directory, nothing of the tmpfs
    shown = strata("run", "--rm", "tmpfs:1", "sh", "-c", "ls -A /t /u /v | grep -v ':$' | grep -c . ; ls -d /t /u /v").stdout
    assert shown.split() == ["0", "/t", "/u", "/v"], shown


@pytest.mark.parametrize(
    ("mount", "error"),
    [
        ("type=tmpfs,target=/t,size=lots", "invalid size: 'lots'"),
        ("type=tmpfs,target=/t,size=1.2.3m", "invalid size: '1.2.3m'"),
        ("type=bind,target=/t,size=1m", "unexpected key 'size' for mount type 'bind'"),
        ("size=1m,type=tmpfs,target=/t", "unexpected key 'size' for mount type 'bind'"),
        ("type=cache,target=/t,size=1m", "unexpected key 'size' for mount type 'cache'"),
    ],
)  # fmt: skip
def test_tmpfs_size_errors(strata: Strata, busybox: str, tmp_path: Path, mount: str, error: str) -> None:
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN --mount={mount} true\n")
    r = strata("build", str(ctx), check=False)
    assert (r.returncode, r.stderr) == (1, f"Error: dockerfile parse error line 2: {error}\n")


def _docker(dockerd: Any, ctx: Path) -> subprocess.CompletedProcess[str]:
    env = dict(dockerd.env, DOCKER_BUILDKIT="1")
    argv = dockerd.argv("build", "--progress", "plain", "--network", "none", "--no-cache", str(ctx))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.peers
@pytest.mark.parametrize("sharing", ["shared", "locked"])
def test_cache_sharing_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path,
                                   sharing: str) -> None:  # fmt: skip
    """Docker 20.10's BuildKit builds both stages at once too: the same order of events in the cache."""
    ctx = _ctx(tmp_path, _two_stages(sharing, f"c-{uuid.uuid4().hex[:8]}"))
    theirs = _docker(dockerd, ctx)
    assert theirs.returncode == 0, theirs.stderr
    _judge(_shown(theirs.stderr), sharing)
    _judge(_shown(strata("build", "--no-cache", str(ctx)).stdout), sharing)


@pytest.mark.peers
def test_cache_private_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str,
                                   tmp_path: Path) -> None:  # fmt: skip
    ctx = _ctx(tmp_path, _two_stages("private", f"c-{uuid.uuid4().hex[:8]}"))
    theirs = _docker(dockerd, ctx)
    assert theirs.returncode == 0, theirs.stderr
    shown = _shown(theirs.stderr)
    assert len(shown) == 4 and shown[0][6:] == shown[1][4:] and shown[2:] == ["log", "log"], shown
    assert len(_shown(strata("build", "--no-cache", str(ctx)).stdout)) == 4


@pytest.mark.peers
def test_tmpfs_size_in_docker_20_10(dockerd: Any, docker_busybox: str, tmp_path: Path) -> None:
    """Docker 20.10's built-in Dockerfile frontend (1.2) predates ``size=`` (dockerfile 1.3's, which
    strata follows): it refuses the key. Recorded here so a newer peer shows the difference."""
    theirs = _docker(dockerd, _ctx(tmp_path, TMPFS))
    assert theirs.returncode == 1
    assert theirs.stderr.rstrip().endswith("dockerfile parse error line 2: unexpected key 'size' in 'size=1m'")
