"""COPY, ADD and WORKDIR write into a scratch rootfs laid out and mounted as a step container's
(``build.steps.Runner.step_root``): the layers are those the container path gives (the same lowers,
init layer and overlay options), nothing stays mounted, and a killed build's scratch root is unmounted
by its watchdog. Stages start with the build and wait at the step that needs another stage
(``build.schedule``): a final stage's first steps run while the stages it needs build, and the output
reads as the classic builder's (a dependent stage's lines held until what it needs is built)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from build_helpers import Strata, mounts_under, runtime_missing

STEPS = """FROM {base}
WORKDIR /w/x/y
WORKDIR /etc
COPY src/ ./
COPY --chown=1:2 --chmod=0640 src/f1 /opt/f1
COPY src /tmp/
COPY src/f1 src/f2 /etc/sub/
COPY --link src/f2 /linked/
ADD a.tar /ext/
COPY big /big/
"""

_CONTAINERS = """
import sys
import strata.build.steps as steps
steps._kernel_overlay_steps = lambda: False  # every step gets a created container, as before
from strata.cli.main import run
sys.argv = ["strata", *sys.argv[1:]]
run()
"""

_OLD = 1577836800  # 2020-01-01: the context's times, the same in both builds


def _context(tmp_path: Path, base: str) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "src" / "sub").mkdir(parents=True)
    (ctx / "big").mkdir()
    (ctx / "Dockerfile").write_text(STEPS.format(base=base))
    for name, data in (("f1", "one\n"), ("f2", "two\n"), ("sub/d", "deep\n")):
        (ctx / "src" / name).write_text(data)
    (ctx / "src" / "f2").chmod(0o600)
    os.symlink("f1", ctx / "src" / "link")
    for i in range(3):  # copied by the worker threads (1 MiB and more)
        (ctx / "big" / f"b{i}").write_bytes(os.urandom((1 << 20) + i))
    with tarfile.open(ctx / "a.tar", "w") as tar:
        info = tarfile.TarInfo("t/a")
        info.size, info.mtime = 2, _OLD
        tar.addfile(info, io.BytesIO(b"a\n"))
    for p in [*ctx.rglob("*"), ctx]:
        os.utime(p, (_OLD, _OLD), follow_symlinks=False)
    return ctx


def _layers(strata: Strata, tmp_path: Path, image: str) -> list[list[str]]:
    """Each layer's members: everything but a directory's time (the clock when the step made it)."""
    out = tmp_path / f"{image.replace(':', '-')}.tar"
    strata("save", "-o", str(out), image)
    layers = []
    with tarfile.open(out) as outer:
        import json

        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(name).read())) as layer:  # type: ignore[union-attr]
                rows = []
                for m in layer.getmembers():
                    content = layer.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
                    pax = {k: v for k, v in m.pax_headers.items() if not (m.isdir() and k == "mtime")}
                    rows.append(f"{m.name} {m.type!r} {m.mode:o} {m.uid}:{m.gid} {m.size} "
                                f"{'-' if m.isdir() else m.mtime} {m.linkname} {sorted(pax.items())} {hash(content)}")  # fmt: skip
                layers.append(rows)
    return layers


def test_copy_add_workdir_layers_are_the_step_containers(strata: Strata, busybox: str, root: Path,
                                                         tmp_path: Path) -> None:  # fmt: skip
    ctx = _context(tmp_path, busybox)
    strata("build", "-q", "-t", "steps:scratch", str(ctx))
    assert not mounts_under(root)
    assert not [p.name for p in (root / "tmp").iterdir()]
    env = dict(os.environ, STRATA_ROOT=str(root))
    subprocess.run([sys.executable, "-c", _CONTAINERS, "build", "-q", "--no-cache", "-t", "steps:containers", str(ctx)],
                   env=env, check=True, capture_output=True, timeout=600)  # fmt: skip
    scratch, containers = _layers(strata, tmp_path, "steps:scratch"), _layers(strata, tmp_path, "steps:containers")
    assert len(scratch) == 9  # the base's, then one per step but WORKDIR /etc's (empty: /etc is there)
    assert scratch == containers
    made = {row.split()[0] for layer in scratch for row in layer}
    assert {"w/x/y", "etc/f1", "etc/sub/d", "opt/f1", "tmp/link", "linked/f2", "ext/t/a", "big/b2"} <= made


def test_the_watchdog_unmounts_a_killed_builds_scratch_root(tmp_path: Path) -> None:
    """What a build killed during a COPY leaves: a ``build-from-<pid>-`` dir with its overlay mounted
    on ``merged``; the watchdog's sweep unmounts and removes it."""
    if runtime_missing():
        pytest.skip(runtime_missing() or "")
    from strata.build.layertree import mount_prefix, unmount
    from strata.build.watchdog import unmount_layer_trees
    from strata.container.rootfs import Rootfs
    from strata.store.root import StoreRoot

    store = tmp_path / "store"
    tmp = StoreRoot(str(store)).tmp
    tmp.mkdir(parents=True, exist_ok=True)
    low = tmp_path / "low"
    low.mkdir()
    (low / "a").write_text("a")
    pid = 999_999_999  # no such process
    cdir = tmp / f"{mount_prefix(pid)}x"
    rootfs = Rootfs(cdir, "overlay")
    rootfs.prepare([low])
    rootfs.mount()
    try:
        assert (cdir / "merged" / "a").read_text() == "a"
        assert mounts_under(tmp) == [str(cdir / "merged")]
        unmount_layer_trees(str(store), pid)
        assert mounts_under(tmp) == []
        assert list(tmp.iterdir()) == []
    finally:  # a failure leaves no mount behind (pytest could not remove its tmp dir)
        unmount(str(cdir / "merged"))


def test_a_final_stage_starts_while_the_stage_it_needs_builds(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """The needed stage waits (through a cache mount both share) for a file the final stage's first RUN
    makes: it can only finish if the final stage began before it was done."""
    sync = f"sync-{uuid.uuid4().hex}"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {busybox} AS build\n"
        f"RUN --mount=type=cache,target=/c,id={sync} sh -c 'for i in $(seq 1200); do [ -e /c/go ] && echo waited > /w "
        "&& exit 0; sleep 0.1; done; exit 1'\n"
        f"FROM {busybox}\n"
        f"RUN --mount=type=cache,target=/c,id={sync} touch /c/go\n"
        "COPY --from=build /w /w\n"
    )
    proc = strata("build", "--no-cache", "-t", "early:1", str(ctx))
    steps = [line for line in proc.stdout.splitlines() if line.startswith("Step ")]
    assert [s.split(" :")[0] for s in steps] == [f"Step {i}/5" for i in range(1, 6)]  # in file order
    assert strata("run", "--rm", "early:1", "cat", "/w").stdout == "waited\n"


def test_a_dependent_stage_shows_nothing_when_the_stage_it_needs_fails(strata: Strata, busybox: str,
                                                                         tmp_path: Path) -> None:  # fmt: skip
    """As the classic builder, which never begins the stage: its first steps' lines are dropped."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {busybox} AS build\nRUN sleep 0.5; exit 3\nFROM {busybox}\nENV A=1\nCOPY --from=build /etc /e\n"
    )
    proc = strata("build", "--no-cache", str(ctx), check=False)
    assert proc.returncode == 3
    assert "Step 2/5 : RUN sleep 0.5; exit 3" in proc.stdout
    assert "Step 3/5" not in proc.stdout and "Step 4/5" not in proc.stdout
    assert proc.stderr.strip().endswith("The command '/bin/sh -c sleep 0.5; exit 3' returned a non-zero code: 3")


def test_a_dependent_stages_own_failure_comes_after_the_stage_it_needs(strata: Strata, busybox: str,
                                                                       tmp_path: Path) -> None:  # fmt: skip
    """The final stage fails before the stage it needs is done: that stage still builds to its end and
    is shown first, then the failure, as in a build of one stage after the other."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {busybox} AS build\nRUN sleep 1; echo built\nFROM {busybox}\nRUN exit 4\nCOPY --from=build /etc /e\n"
    )
    proc = strata("build", "--no-cache", str(ctx), check=False)
    assert proc.returncode == 4
    lines = proc.stdout.splitlines()
    assert lines.index("built") < lines.index(f"Step 3/5 : FROM {busybox}") < lines.index("Step 4/5 : RUN exit 4")
    assert "Step 5/5" not in proc.stdout
