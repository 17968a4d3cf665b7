"""``RUN --mount`` details as Docker 20.10's BuildKit does them: the mount points a step had to make
stay in its layer when they are directories (the target and every parent made for it, of a bind,
cache, tmpfs, secret or ssh mount) and go when they are files (a file bind, a secret, an ssh socket);
two mounts of one cache in one RUN are one directory held once (two ``sharing=locked`` mounts do not
wait for each other); two builds that lock one cache at the same time run one after the other."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata
from imagetree import read_image

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="openssh-client is not installed")
SHOW = " | sed 's/^/SHOW /'"
STUBS = (
    f"FROM {BUSYBOX}\nWORKDIR /w\n"
    "RUN --mount=type=bind,target=/x/y true\n"
    "RUN --mount=type=bind,source=f.txt,target=/bf/file true\n"
    "RUN --mount=type=cache,target=/c/d true\n"
    "RUN --mount=type=tmpfs,target=rel/t true\n"
    "RUN --mount=type=secret,id=s true\n"
    "RUN --mount=type=secret,id=s,target=/sec/file true\n"
    "RUN --mount=type=ssh true\n"
    "RUN --mount=type=ssh,target=/sshsock true\n"
    "RUN --mount=type=bind,source=f.txt,target=/x/y/f mkdir /x/y/z\n"
    "RUN --mount=type=bind,source=f.txt,target=/tmp/kept sh -c 'echo mine > /tmp/kept' || true\n"
)  # fmt: skip
# what the steps add to the base's tree (directories only: the file mount points are gone)
ADDED = {"w", "x", "x/y", "x/y/z", "bf", "c", "c/d", "w/rel", "w/rel/t", "run", "run/secrets", "sec", "run/buildkit"}


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "f.txt").write_text("hello\n")
    (ctx / "sec.txt").write_text("secret\n")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True)
    return ctx


def _flags(tmp_path: Path) -> tuple[str, ...]:
    return ("--network", "none", "--secret", f"id=s,src={tmp_path / 'ctx' / 'sec.txt'}", "--ssh", f"default={tmp_path / 'key'}")


def _added(archive: Path, base: Path) -> dict[str, Any]:
    tree, _ = read_image(archive)
    before, _ = read_image(base)
    return {k: v for k, v in tree.items() if before.get(k) != v}


def test_mount_points_left_as_buildkit_leaves_them(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, STUBS)
    strata("build", *_flags(tmp_path), "-t", "stubs:1", str(ctx))
    strata("save", "-o", str(tmp_path / "s.tar"), "stubs:1")
    strata("save", "-o", str(tmp_path / "base.tar"), BUSYBOX)
    added = _added(tmp_path / "s.tar", tmp_path / "base.tar")
    # /tmp/kept: a bind over a file the RUN could not write (read-only) is gone; /tmp was there already
    assert set(added) == ADDED, sorted(added)
    assert {v[:4] for v in added.values()} == {("dir", 0o755, 0, 0)}


def _build(root: Path, ctx: Path, *flags: str) -> subprocess.Popen[str]:
    """``strata build`` started (not waited for): a hang shows as a timeout, not a stuck test run."""
    env = dict(os.environ, STRATA_ROOT=str(root))
    argv = [sys.executable, "-m", "strata", "build", "--no-cache", "--network", "none", *flags, str(ctx)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _shown(output: str) -> list[str]:
    return [re.sub(r"^.*?SHOW ", "", line) for line in output.splitlines() if "SHOW " in line and "RUN " not in line]


def _one_run_two_mounts(sharing: tuple[str, str]) -> str:
    cid = f"c-{uuid.uuid4().hex[:8]}"
    return (
        f"FROM {BUSYBOX}\nRUN --mount=type=cache,id={cid},target=/a,sharing={sharing[0]} "
        f"--mount=type=cache,id={cid},target=/b,sharing={sharing[1]} "
        f"(echo x > /a/f; ls /b; stat -c %i /a /b | uniq | wc -l){SHOW}\n"
    )


SHARINGS = [("locked", "locked"), ("locked", "shared"), ("private", "private"), ("shared", "private")]


@pytest.mark.parametrize("sharing", SHARINGS)
def test_one_run_two_mounts_of_one_cache(busybox: str, root: Path, tmp_path: Path, sharing: tuple[str, str]) -> None:
    """Both targets show the one cache (what one writes the other sees); no step waits for itself."""
    proc = _build(root, _ctx(tmp_path, _one_run_two_mounts(sharing)))
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert _shown(out) == ["f", "1"], out


def test_builds_locking_one_cache_wait_for_each_other(busybox: str, root: Path, tmp_path: Path) -> None:
    """Two builds at once, each holding the ``locked`` cache across a sleep: the second waits (its
    ``start`` comes after the first's ``end``), neither fails."""
    cid = f"c-{uuid.uuid4().hex[:8]}"
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nARG N\nRUN --mount=type=cache,id={cid},target=/c,sharing=locked"
                         " (echo start-$N >> /c/log; sleep 2; echo end-$N >> /c/log)\n"
                         f"RUN --mount=type=cache,id={cid},target=/c,sharing=locked cat /c/log{SHOW}\n")  # fmt: skip
    procs = [_build(root, ctx, "--build-arg", f"N={n}") for n in (1, 2)]
    outs = []
    try:
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    log = max((_shown(o) for o in outs), key=len)
    assert len(log) == 4 and log[0][6:] == log[1][4:] and log[2][6:] == log[3][4:], log
    assert {log[0][6:], log[2][6:]} == {"1", "2"}, log


def _docker(dockerd: Any, ctx: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in dict(dockerd.env, DOCKER_BUILDKIT="1").items() if k != "SSH_AUTH_SOCK"}
    argv = dockerd.argv("build", "--progress", "plain", "--no-cache", *flags, str(ctx))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=ctx)


@pytest.mark.peers
def test_mount_points_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    """The same Dockerfile built by Docker 20.10's BuildKit: the same files added to the base (kind,
    mode, owner, content), the base's own saved by each."""
    ctx = _ctx(tmp_path, STUBS)
    tag = f"strata-stubs-{uuid.uuid4().hex[:8]}:1"
    try:
        r = _docker(dockerd, ctx, *_flags(tmp_path), "-t", tag)
        assert r.returncode == 0, r.stderr
        dockerd.run("save", "-o", str(tmp_path / "d.tar"), tag)
        dockerd.run("save", "-o", str(tmp_path / "dbase.tar"), docker_busybox)
    finally:
        subprocess.run(dockerd.argv("rmi", "-f", tag), env=dockerd.env, capture_output=True, timeout=60)
    strata("build", *_flags(tmp_path), "-t", tag, str(ctx))
    strata("save", "-o", str(tmp_path / "s.tar"), tag)
    strata("save", "-o", str(tmp_path / "sbase.tar"), BUSYBOX)
    theirs = _added(tmp_path / "d.tar", tmp_path / "dbase.tar")
    assert _added(tmp_path / "s.tar", tmp_path / "sbase.tar") == theirs
    assert set(theirs) == ADDED


@pytest.mark.peers
@pytest.mark.parametrize("sharing", SHARINGS)
def test_one_run_two_mounts_of_one_cache_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str,
                                                     tmp_path: Path, sharing: tuple[str, str]) -> None:  # fmt: skip
    ctx = _ctx(tmp_path, _one_run_two_mounts(sharing))
    theirs = _docker(dockerd, ctx, "--network", "none")
    assert theirs.returncode == 0, theirs.stderr
    assert _shown(strata("build", "--network", "none", str(ctx)).stdout) == _shown(theirs.stderr) == ["f", "1"]
