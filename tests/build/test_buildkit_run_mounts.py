"""``RUN --mount`` as BuildKit does it: ``type=bind,from=<stage|image>`` (read-only, or ``rw`` with the
writes discarded), ``type=cache,from=`` (a new cache seeded from the stage, kept between builds),
``type=secret`` with ``--secret id=…,src=…`` (mode, owner; never in the image), ``type=ssh`` (no agent:
refused when required), and BuildKit's errors for bad mounts and ``--secret`` flags. Next to Docker
20.10's BuildKit (``DOCKER_BUILDKIT=1``): the same output from the same Dockerfile, the same errors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata, mounts_under

SRC_STAGE = f"FROM {BUSYBOX} AS src\nRUN mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b && chmod 640 /data/a\n"
SHOW = " | sed 's/^/SHOW /'"
FROM_MOUNTS = (
    SRC_STAGE + f"FROM {BUSYBOX}\n"
    f"RUN --mount=type=bind,from=src,source=/data,target=/m (stat -c '%A %n' /m/a /m/sub; cat /m/a; touch /m/x 2>&1 || echo ro){SHOW}\n"
    f"RUN --mount=type=bind,from=src,source=data,target=/m2,rw (touch /m2/x && ls /m2){SHOW}\n"
    f"RUN --mount=type=bind,from=src,target=/m3 ls /m3/data{SHOW}\n"
    f"RUN --mount=type=bind,from={BUSYBOX},source=/bin/busybox,target=/bb stat -c %A /bb{SHOW}\n"
    f"RUN --mount=type=bind,source=../../ctx.txt,target=/c cat /c{SHOW}\n"
    f"RUN --mount=type=cache,from=src,source=/data,target=/cc (ls /cc && echo new > /cc/new){SHOW}\n"
    f"RUN --mount=type=cache,from=src,source=/data,target=/cc ls /cc{SHOW}\n"
    "RUN ls -d /m /m2 /m3 /bb /c /cc/new 2>/dev/null | grep -v -e '^/m$' -e '^/m2$' -e '^/m3$' -e '^/cc$' > /left; true\n"
)  # fmt: skip
FROM_MOUNTS_SHOWN = [
    "-rw-r----- /m/a", "drwxr-xr-x /m/sub", "one", "touch: /m/x: Read-only file system", "ro", "a", "sub", "x", "a", "sub",
    "-rwxr-xr-x", "hello", "a", "sub", "a", "new", "sub",
]  # fmt: skip


MODES = (
    f"FROM {BUSYBOX}\nWORKDIR /w\n"
    "RUN --mount=type=tmpfs,target=/t --mount=type=cache,target=/c1 --mount=type=cache,target=/c2,uid=5,gid=6,mode=0700 "
    f"--mount=type=bind,target=rel stat -c '%a %u %g %n' /t /c1 /c2 /w/rel{SHOW}\n"
    f"RUN --mount=type=bind,target=/ctx ls -a /ctx /ctx/sub{SHOW}\n"
    f"RUN --mount=type=cache,target=/c3,ro touch /c3/x 2>&1{SHOW}\n"
    f"RUN --mount=type=bind,source=ctx.txt,target=/k,rw (echo more >> /k; cat /k){SHOW}\n"
)  # fmt: skip
MODES_SHOWN = [
    "1777 0 0 /t", "755 0 0 /c1", "700 5 6 /c2", "755 0 0 /w/rel",
    "/ctx:", ".", "..", ".dockerignore", "Dockerfile", "ctx.txt", "sec.txt", "sub", "", "/ctx/sub:", ".", "..", "kept",
    "touch: /c3/x: Read-only file system", "hello", "more",
]  # fmt: skip


def _shown(output: str) -> list[str]:
    """What the RUN steps printed (``SHOW …``), from classic lines or BuildKit's ``#N 0.123 …`` lines."""
    return [re.sub(r"^.*?SHOW ", "", line) for line in output.splitlines() if "SHOW " in line and "RUN " not in line]


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "ctx.txt").write_text("hello\n")
    (ctx / "sec.txt").write_text("s3cret\n")
    (ctx / "ignored.txt").write_text("not in the context\n")
    (ctx / "sub").mkdir(exist_ok=True)
    (ctx / "sub" / "z").write_text("z\n")
    (ctx / "sub" / "kept").write_text("kept\n")
    (ctx / ".dockerignore").write_text("ignored.txt\nsub/z\n")
    return ctx


def _docker(dockerd: Any, ctx: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = dict(dockerd.env, DOCKER_BUILDKIT="1")
    argv = dockerd.argv("build", "--progress", "plain", "--network", "none", "--no-cache", *flags, str(ctx))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=ctx)


def test_mounts_from_a_stage_and_an_image(strata: Strata, busybox: str, root: Path, tmp_path: Path) -> None:
    """The ``src`` stage is built only because a mount names it; nothing of the mounts is left."""
    ctx = _ctx(tmp_path, FROM_MOUNTS)
    r = strata("build", "-t", "mountfrom:1", str(ctx))
    assert _shown(r.stdout) == FROM_MOUNTS_SHOWN, r.stdout
    assert strata("run", "--rm", "mountfrom:1", "cat", "/left").stdout == ""
    assert (ctx / "ctx.txt").read_text() == "hello\n"
    assert strata("ps", "-aq").stdout == "" and mounts_under(root) == []
    # the cache outlives the build: a new step in the next build sees what the first one left in it
    (ctx / "Dockerfile").write_text(FROM_MOUNTS + f"RUN --mount=type=cache,from=src,source=/data,target=/cc ls /cc/{SHOW}\n")
    assert _shown(strata("build", str(ctx)).stdout) == ["a", "new", "sub"]


def test_what_a_mount_shows_decides_the_cache(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """A RUN is rebuilt when the context file it binds or the stage it binds from changed (BuildKit
    keys the step by its mounts' content); nothing changed: from the cache."""
    dockerfile = (
        f"FROM {BUSYBOX} AS src\nARG V=1\nRUN echo $V > /v\nFROM {BUSYBOX}\n"
        "RUN --mount=type=bind,source=ctx.txt,target=/c --mount=type=bind,from=src,source=/v,target=/v cat /c /v > /out\n"
    )  # fmt: skip
    ctx = _ctx(tmp_path, dockerfile)
    strata("build", "-t", "mkey:1", str(ctx))
    again = strata("build", "-t", "mkey:1", str(ctx))
    assert again.stdout.count("Using cache") == 3 and "Running in" not in again.stdout
    (ctx / "ctx.txt").write_text("changed\n")
    strata("build", "-t", "mkey:1", str(ctx))
    assert strata("run", "--rm", "mkey:1", "cat", "/out").stdout == "changed\n1\n"
    strata("build", "-t", "mkey:1", "--build-arg", "V=2", str(ctx))
    assert strata("run", "--rm", "mkey:1", "cat", "/out").stdout == "changed\n2\n"


def test_an_unknown_from_is_an_image(strata: Strata, busybox: str, root: Path, tmp_path: Path) -> None:
    """``from=`` not naming an earlier stage names an image: pulled as ``FROM`` would pull it (here
    from a registry nobody listens on: the pull's error, as for ``FROM``), nothing left behind."""
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN --mount=type=bind,from=127.0.0.1:1/nosuch,target=/m true\n")
    r = strata("build", str(ctx), check=False)
    (ctx / "Dockerfile").write_text("FROM 127.0.0.1:1/nosuch\n")
    as_from = strata("build", str(ctx), check=False)
    assert r.returncode == as_from.returncode == 1
    assert r.stderr.splitlines()[-1] == as_from.stderr.splitlines()[-1]
    assert "127.0.0.1:1" in r.stderr and "connection refused" in r.stderr
    assert strata("ps", "-aq").stdout == "" and mounts_under(root) == []


def test_rw_bind_of_the_context_leaves_it_alone(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN --mount=type=bind,target=/c,rw rm /c/ctx.txt && echo gone > /c/new && ls /c{SHOW}\n")
    r = strata("build", str(ctx))
    assert _shown(r.stdout) == ["Dockerfile", "new", "sec.txt", "sub"]
    assert sorted(p.name for p in ctx.iterdir()) == [".dockerignore", "Dockerfile", "ctx.txt", "ignored.txt", "sec.txt", "sub"]


def test_mount_modes_and_the_dockerignore(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """A tmpfs is 1777, a new cache 0755 (or its uid/gid/mode), a relative target is below the
    WORKDIR, a context bind shows what .dockerignore leaves in, a ``ro`` cache refuses writes."""
    ctx = _ctx(tmp_path, MODES)
    assert _shown(strata("build", str(ctx)).stdout) == MODES_SHOWN
    assert (ctx / "ctx.txt").read_text() == "hello\n"


def test_secret(strata: Strata, busybox: str, tmp_path: Path) -> None:
    dockerfile = (
        f"FROM {BUSYBOX}\n"
        f"RUN --mount=type=secret,id=mysec (cat /run/secrets/mysec; stat -c '%A %u %g' /run/secrets/mysec){SHOW}\n"
        f"RUN --mount=type=secret,id=mysec,target=/s,mode=0440,uid=5,gid=6 (cat /s; stat -c '%A %u %g' /s){SHOW}\n"
        f"RUN --mount=type=secret,id=other (cat /run/secrets/other 2>&1 || echo absent){SHOW}\n"
    )  # fmt: skip
    ctx = _ctx(tmp_path, dockerfile)
    r = strata("build", "-t", "secret:1", "--secret", "id=mysec,src=sec.txt", str(ctx), cwd=ctx)
    assert _shown(r.stdout) == [
        "s3cret", "-r-------- 0 0", "s3cret", "-r--r----- 5 6", "cat: can't open '/run/secrets/other': No such file or directory", "absent",
    ]  # fmt: skip
    leftovers = strata("run", "--rm", "secret:1", "sh", "-c", "ls -d /run/secrets/* /s 2>/dev/null; ls -d /run/secrets").stdout
    assert leftovers == "/run/secrets\n"  # BuildKit's: the directories made for a mount stay, its file goes
    saved = tmp_path / "secret.tar"
    strata("save", "-o", str(saved), "secret:1")
    assert b"s3cret" not in saved.read_bytes()


@pytest.mark.parametrize(
    ("mount", "flags", "error"),
    [
        ("type=nfs,target=/m", (), 'dockerfile parse error line 2: unsupported mount type "nfs"'),
        ("type=bind,target=/m,foo=bar", (), "dockerfile parse error line 2: unexpected key 'foo' in 'foo=bar'"),
        ("type=bind,target=/m,bogus", (), "dockerfile parse error line 2: invalid field 'bogus' must be a key=value pair"),
        ("type=bind,target=/m,ro=maybe", (), "dockerfile parse error line 2: invalid value for ro: maybe"),
        ("type=bind,target=/m,mode=0700", (), 'dockerfile parse error line 2: mode not allowed for "bind" type mounts'),
        ("type=bind,target=/m,required", (), "dockerfile parse error line 2: unexpected key 'required' for mount type 'bind'"),
        ("type=cache,target=/m,sharing=bogus", (), 'dockerfile parse error line 2: unsupported sharing value "bogus"'),
        ("type=tmpfs,target=/m,sharing=locked", (), "dockerfile parse error line 2: invalid cache sharing set for tmpfs mount"),
        ("type=secret,id=x,from=src", (), "dockerfile parse error line 2: secret mount should not have a from"),
        ("type=secret,source=a,id=b", (), "dockerfile parse error line 2: both source and id can't be set"),
        ("type=bind,source=nope.txt,target=/m", (), '"/nope.txt" not found: not found'),
        ("type=bind,source=ignored.txt,target=/m", (), '"/ignored.txt" not found: not found'),
        ("type=secret,id=mysec,required", (), "secret mysec not found: not found"),
        ("type=ssh,required=true", (), 'no SSH key "" forwarded from the client'),
        ("type=secret,id=x", ("--secret", "foo"), "could not parse secrets: [foo]: invalid field 'foo' must be a key=value pair"),
        ("type=secret,id=x", ("--secret", "src=sec.txt"), "could not parse secrets: [src=sec.txt]: secret missing ID"),
        ("type=secret,id=x", ("--secret", "id=x,bar=1"), "could not parse secrets: [id=x,bar=1]: unexpected key 'bar' in 'bar=1'"),
        ("type=secret,id=x", ("--secret", "id=x,src=nope"),
         "could not parse secrets: [id=x,src=nope]: failed to stat nope: stat nope: no such file or directory"),
    ],
)  # fmt: skip
def test_mount_errors(strata: Strata, busybox: str, tmp_path: Path, mount: str, flags: tuple[str, ...], error: str) -> None:
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN --mount={mount} true\n")
    r = strata("build", *flags, str(ctx), check=False, cwd=ctx)
    assert (r.returncode, r.stderr) == (1, f"Error: {error}\n")
    assert strata("ps", "-aq").stdout == ""


@pytest.mark.peers
def test_mounts_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, FROM_MOUNTS)
    theirs = _docker(dockerd, ctx)
    assert theirs.returncode == 0, theirs.stderr
    ours = strata("build", "--no-cache", str(ctx))
    assert _shown(ours.stdout) == _shown(theirs.stderr) == FROM_MOUNTS_SHOWN


@pytest.mark.peers
@pytest.mark.parametrize(
    ("mount", "flags"),
    [
        ("type=nfs,target=/m", ()),
        ("type=bind,target=/m,foo=bar", ()),
        ("type=bind,target=/m,mode=0700", ()),
        ("type=cache,target=/m,sharing=bogus", ()),
        ("type=secret,id=x,from=src", ()),
        ("type=bind,source=nope.txt,target=/m", ()),
        ("type=bind,source=ignored.txt,target=/m", ()),
        ("type=secret,id=mysec,required", ()),
        ("type=ssh,required=true", ()),
        ("type=secret,id=x", ("--secret", "foo")),
        ("type=secret,id=x", ("--secret", "id=x,src=nope")),
    ],
)  # fmt: skip
def test_mount_errors_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path,
                                  mount: str, flags: tuple[str, ...]) -> None:  # fmt: skip
    """Docker prefixes its own words (``failed to solve with frontend dockerfile.v0: …``); strata's
    message is what ends Docker's."""
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN --mount={mount} true\n")
    theirs = _docker(dockerd, ctx, *flags)
    ours = strata("build", *flags, str(ctx), check=False, cwd=ctx)
    assert theirs.returncode == ours.returncode == 1
    assert ours.stderr.startswith("Error: ")
    last = [line for line in theirs.stderr.splitlines() if line.strip()][-1]
    assert last.endswith(ours.stderr[len("Error: ") :].rstrip("\n")), (last, ours.stderr)


@pytest.mark.peers
def test_mount_modes_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, MODES)
    theirs = _docker(dockerd, ctx)
    assert theirs.returncode == 0, theirs.stderr
    assert _shown(strata("build", str(ctx)).stdout) == _shown(theirs.stderr) == MODES_SHOWN


@pytest.mark.peers
def test_secret_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    dockerfile = (
        f"FROM {BUSYBOX}\n"
        f"RUN --mount=type=secret,id=mysec (cat /run/secrets/mysec; stat -c '%A %u %g' /run/secrets/mysec){SHOW}\n"
        f"RUN --mount=type=secret,id=mysec,target=/s,mode=0440,uid=5,gid=6 (cat /s; stat -c '%A %u %g' /s){SHOW}\n"
        f"RUN --mount=type=secret,id=other (cat /run/secrets/other 2>&1 || echo absent){SHOW}\n"
    )  # fmt: skip
    ctx = _ctx(tmp_path, dockerfile)
    theirs = _docker(dockerd, ctx, "--secret", "id=mysec,src=sec.txt")
    assert theirs.returncode == 0, theirs.stderr
    ours = strata("build", "--secret", "id=mysec,src=sec.txt", str(ctx), cwd=ctx)
    assert _shown(ours.stdout) == _shown(theirs.stderr)
