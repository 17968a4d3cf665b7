"""An adopted step's renames (its upper dir into layers/, its tar and config into blobs/) are made durable
by one fsync of each directory after the last of them, and before the store records the layer: seen
with strace as a user's build runs. ``atomicfile.dir_fsyncs_at_end`` itself: one fsync per directory
as its block ends, none after an error, only in its own thread."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from build_helpers import Strata

from strata.atomicfile import dir_fsyncs_at_end, fsync_dir


def _trace(root: Path, ctx: Path, out: Path) -> list[str]:
    env = dict(os.environ, STRATA_ROOT=str(root))
    done = subprocess.run(
        ["strace", "-f", "-y", "-qq", "-e", "trace=fsync,syncfs,rename,renameat,renameat2,pwrite64,write", "-o",
         str(out), sys.executable, "-m", "strata", "build", "--no-cache", "-q", "--network", "none", "-t",
         "dirsync/t:1", str(ctx)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out.read_text().splitlines()


def test_adopted_renames_are_durable_before_the_layer_is_recorded(
    strata: Strata, busybox: str, root: Path, tmp_path: Path
) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {busybox}\nRUN mkdir /d && echo a > /d/a\n")
    lines = _trace(root, ctx, tmp_path / "trace")
    diff_id = strata("inspect", "-f", "{{json .RootFS.Layers}}", "dirsync/t:1").stdout.split('"')[-2]
    hexid = diff_id.split(":")[1]
    layer, blob = str(root / "layers" / hexid), str(root / "blobs" / "sha256" / hexid)
    if not (root / "layers" / hexid).is_dir():
        pytest.skip("the step's upper dir was not adopted here (not the kernel's overlay as root)")

    def first(pattern: str, start: int = 0) -> int:
        return next(i for i in range(start, len(lines)) if re.search(pattern, lines[i]))

    renamed = max(first(r"rename\w*\(.*\"" + re.escape(path) + '"') for path in (layer, blob))
    dirs = (str(root / "layers"), str(root / "blobs" / "sha256"))
    synced = {path: first(r"fsync\(\d+<" + re.escape(path) + ">", renamed) for path in dirs}
    recorded = first(r"(pwrite64|write)\(\d+<[^>]*strata\.db[^>]*>", renamed)  # the layer's row
    assert max(synced.values()) < recorded, lines[renamed:recorded + 1]
    between = lines[renamed:max(synced.values()) + 1]
    for path in dirs:  # once each, after all the renames
        assert sum(f"<{path}>" in line for line in between if "fsync(" in line) == 1, between
    assert strata("run", "--rm", "dirsync/t:1", "cat", "/d/a").stdout == "a\n"


def test_dir_fsyncs_at_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    with dir_fsyncs_at_end():
        fsync_dir(a)
        fsync_dir(b)
        fsync_dir(str(a))
        other = threading.Thread(target=fsync_dir, args=(b,))  # another thread: at once, as always
        other.start()
        other.join()
        assert synced == [str(b)]
    assert synced == [str(b), str(a), str(b)]  # each noted directory once, in order, at the end
    synced.clear()
    with pytest.raises(RuntimeError), dir_fsyncs_at_end():
        fsync_dir(a)
        raise RuntimeError("failed")
    assert synced == []  # nothing is recorded after an error: its renames need not be durable
    fsync_dir(a)
    assert synced == [str(a)]
