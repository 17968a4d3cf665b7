"""``COPY --from`` reads the source stage's layers as a read-only overlay (build.layertree) instead of
making a container: the copied trees are those the container path gives (vfs keeps that path), with
whiteouts, opaque directories, symlinked directories in the source path and symlinks pointing out of
the root resolved inside it; ``COPY --from=stage /`` holds no container init files (as Docker's
builder reads an image); nothing stays mounted, and a killed build's tree is unmounted by its watchdog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from build_helpers import BUSYBOX, Strata, mounts_under, runtime_missing
from imagetree import Entry, read_image

DOCKERFILE = f"""FROM {BUSYBOX} AS src
RUN mkdir -p /data/keep /data/gone /data/opq/sub /real && echo k > /data/keep/k && echo g > /data/gone/g \\
 && echo o > /data/opq/sub/o && echo r > /real/r && ln -s /real /data/link && ln -s ../../../etc /data/up \\
 && ln -s /../../etc/passwd /data/pw && chmod 0640 /data/keep/k
RUN rm -rf /data/gone /data/opq && mkdir -p /data/opq && echo new > /data/opq/n && echo x > /real/r2
FROM scratch AS one
COPY --from=src /real/r /r
FROM {BUSYBOX}
COPY --from=src /data /d1/
COPY --from=src /data/link/ /d2/
COPY --from=src /data/link/r /d3
COPY --from=src /data/pw /d4
COPY --from=src /data/up/group /d5
COPY --from=one / /d6/
COPY --from=src /data/opq /d7/
"""


def _copied(strata: Strata, tmp_path: Path, tag: str) -> dict[str, Entry]:
    strata("save", "-o", str(tmp_path / f"{tag}.tar"), f"from-layers:{tag}")
    tree, _ = read_image(tmp_path / f"{tag}.tar")
    return {k: v for k, v in tree.items() if k.split("/")[0] in {f"d{i}" for i in range(1, 8)}}


def test_copy_from_reads_the_layers_as_a_container_would(strata: Strata, busybox: str, root: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    strata("build", "-q", "-t", "from-layers:layers", str(ctx))
    assert not mounts_under(root)
    assert not [p.name for p in (root / "tmp").glob("build-from-*")]
    monkeypatch.setenv("STRATA_STORAGE_DRIVER", "vfs")  # the strata fixture passes it on: the container path
    strata("build", "-q", "--no-cache", "-t", "from-layers:container", str(ctx))
    layers, container = _copied(strata, tmp_path, "layers"), _copied(strata, tmp_path, "container")
    # what the source stage's layers say: the removed dir gone, the re-made one opaque, links resolved inside
    assert "d1/gone" not in layers and "d1/keep/k" in layers and layers["d1/keep/k"][1] == 0o640
    assert sorted(k for k in layers if k.startswith("d7")) == ["d7", "d7/n"]
    assert sorted(k for k in layers if k.startswith("d1/opq")) == ["d1/opq", "d1/opq/n"]
    assert layers["d1/link"] == ("link", 0o777, 0, 0, "/real") and layers["d2/r"][0] == "file"
    assert layers["d3"][0] == layers["d4"][0] == layers["d5"][0] == "file"
    assert "d2/r2" in layers
    # a stage is read as its image: no container init files (/.dockerenv, /dev, /etc/hosts …)
    assert sorted(k for k in layers if k.startswith("d6")) == ["d6", "d6/r"]
    # everything else exactly as a container's rootfs showed it
    assert {k: v for k, v in layers.items() if not k.startswith("d6")} == {
        k: v for k, v in container.items() if not k.startswith("d6")
    }


_HOLDER = """
import sys, time
from pathlib import Path
from strata.build import watchdog
from strata.build.layertree import layers_root
if len(sys.argv) > 4:
    watchdog.ensure(sys.argv[4])  # as a build does before it mounts a layer tree
with layers_root([Path(sys.argv[1]), Path(sys.argv[2])], Path(sys.argv[3])) as where:
    print(where, flush=True)
    time.sleep(60)
"""


def test_the_watchdog_unmounts_a_killed_builds_layer_tree(tmp_path: Path) -> None:
    if runtime_missing():
        pytest.skip(runtime_missing() or "")
    from strata.build.watchdog import unmount_layer_trees
    from strata.store.root import StoreRoot

    store = tmp_path / "store"
    tmp = StoreRoot(str(store)).tmp
    tmp.mkdir(parents=True, exist_ok=True)
    low, high = tmp_path / "low", tmp_path / "high"
    for d, name in ((low, "a"), (high, "b")):
        d.mkdir()
        (d / name).write_text(name)
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(low), str(high), str(tmp)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout is not None
    where = proc.stdout.readline().strip()
    assert sorted(os.listdir(where)) == ["a", "b"]
    assert mounts_under(tmp) == [where]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert mounts_under(tmp) == [where]  # a kill -9 runs no cleanup
    unmount_layer_trees(str(store), proc.pid)
    assert mounts_under(tmp) == []
    assert list(tmp.iterdir()) == []


def test_a_killed_builds_watchdog_unmounts_its_layer_tree(tmp_path: Path) -> None:
    """The whole way: the holder starts its watchdog as a build does, is killed -9, and the watchdog
    (waiting on its pidfd) unmounts and removes the tree without anyone calling it."""
    import time

    if runtime_missing():
        pytest.skip(runtime_missing() or "")
    from strata.store.root import StoreRoot

    store = tmp_path / "store"
    tmp = StoreRoot(str(store)).tmp
    tmp.mkdir(parents=True, exist_ok=True)
    low, high = tmp_path / "low", tmp_path / "high"
    for d, name in ((low, "a"), (high, "b")):
        d.mkdir()
        (d / name).write_text(name)
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(low), str(high), str(tmp), str(store)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    where = proc.stdout.readline().strip()
    assert mounts_under(tmp) == [where]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    deadline = time.monotonic() + 60  # a loaded machine: the watcher's interpreter may be slow to run
    while (mounts_under(tmp) or list(tmp.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mounts_under(tmp) == []
    assert list(tmp.iterdir()) == []
