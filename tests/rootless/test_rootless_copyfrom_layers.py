"""A rootless ``COPY --from`` reads the source's layers as a rootless step container's rootfs gets them
(``build.layertree``), no container made: the kernel's overlay with ``userxattr`` in the user's
namespace (or fuse-overlayfs where step containers get that), over the layers the rootless unpack wrote
(0/0 whiteouts, ``user.overlay.opaque``). Proven on the build corpus's ``copyfrom`` case over its
source stage loaded from root's store: the same layers (every header but a made directory's mtime, and
every file's content), files, config and history as root's build, the same files as the container path
(vfs) but for its init files; a killed holder's tree is unmounted by the watchdog in the user's
namespace. (``test_rootless_corpus.py`` builds the whole case, source stage too.)"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from rootlesshelpers import SRC, User

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "build"))
from imagetree import config_view, history_view, read_image  # noqa: E402

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(shutil.which("runc") is None, reason="needs runc"),
]

BUSYBOX = "strata-test/busybox:latest"
CORPUS = (TESTS / "build" / "corpus" / "copyfrom" / "Dockerfile").read_text()
# the corpus case with its source stage made once (as root) and loaded: the copies' layers comparable
SRC_STAGE = CORPUS.split("\nFROM scratch")[0] + "\n"
FINAL = CORPUS.replace(SRC_STAGE, "FROM cf-src:1 AS src\n")
LayerView = list[tuple[Any, ...]]


def _layers(archive: Path) -> list[LayerView]:
    """Each layer of a saved image: its tar headers (a directory's mtime aside: a COPY makes its
    destination directories at build time, as Docker's builder) and file contents."""
    out: list[LayerView] = []
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            blob = outer.extractfile(name)
            assert blob is not None
            with tarfile.open(fileobj=io.BytesIO(blob.read())) as layer:
                rows: LayerView = []
                for m in layer:
                    f = layer.extractfile(m) if m.isfile() else None
                    content = hashlib.sha256(f.read()).hexdigest() if f else m.linkname
                    rows.append((m.name, m.type, m.mode, m.uid, m.gid, m.size, None if m.isdir() else m.mtime,
                                 m.devmajor, m.devminor, sorted(m.pax_headers.items()), content))  # fmt: skip
            out.append(rows)
    return out


def _context(base: Path, name: str, dockerfile: str, owner: User | None = None) -> Path:
    ctx = base / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    if owner is not None:
        for p in (ctx, ctx / "Dockerfile"):
            shutil.chown(p, owner.uid, owner.gid)
    return ctx


@pytest.fixture(scope="module")
def as_root(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Root's builds of the corpus case's source stage and of its final stages over that image (saved)."""
    import peers

    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = tmp_path_factory.mktemp("rootside")
    base.chmod(0o755)
    env = dict(os.environ, STRATA_ROOT=str(base / "store"), PYTHONPATH=str(SRC))

    def strata(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "strata", *args], env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr

    bb = peers.busybox_rootfs_tar(base / "bb.tar")
    strata("import", "-c", 'CMD ["/bin/sh"]', str(bb), BUSYBOX)
    strata("build", "-q", "-t", "cf-src:1", str(_context(base, "src", SRC_STAGE)))
    strata("build", "-q", "-t", "cf-final:1", str(_context(base, "final", FINAL)))
    out = {"bb": bb}
    for name in ("cf-src", "cf-final"):
        out[name] = base / f"{name}.tar"
        strata("save", "-o", str(out[name]), f"{name}:1")
    for path in base.iterdir():
        path.chmod(0o755 if path.is_dir() else 0o644)
    return out


def _created_from(user: User, image: str, since: float) -> list[str]:
    """The containers made from ``image`` since ``since`` (the store's events)."""
    image_id = user.strata("inspect", "-f", "{{.Id}}", image).stdout.strip()
    events = user.strata("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
                         "--filter", "type=container", "--filter", "event=create").stdout  # fmt: skip
    return [line for line in events.splitlines() if f"image={image_id}," in line]


def _build(user: User, ctx: Path, tag: str, **env: str) -> tuple[Path, list[str]]:
    """``tag`` built from ``ctx`` as the user (``--no-cache``), saved; the containers of the source image
    the build made."""
    user.extra_env = env
    since = time.time()
    try:
        user.strata("build", "-q", "--no-cache", "--network", "none", "-t", tag, str(ctx), timeout=600)
    finally:
        user.extra_env = {}
    saved = user.home / f"{tag.replace(':', '-')}.tar"
    user.strata("save", "-o", str(saved), tag)
    return saved, _created_from(user, "cf-src:1", since)


def test_rootless_copy_from_reads_layers_as_root_and_the_container_path(user: User,
                                                                       as_root: dict[str, Path]) -> None:  # fmt: skip
    for name in ("bb", "cf-src"):
        shutil.copy(as_root[name], user.home / f"{name}.tar")
        shutil.chown(user.home / f"{name}.tar", user.uid, user.gid)
    user.strata("import", "-c", 'CMD ["/bin/sh"]', "bb.tar", BUSYBOX)
    user.strata("load", "-i", "cf-src.tar")  # unpacked rootless: 0/0 whiteouts, user.overlay.opaque
    final = _context(user.home, "final", FINAL, user)
    layers, made = _build(user, final, "cf-final:layers")
    assert made == []  # no container of the source image: its layers were read
    container, made = _build(user, final, "cf-final:container", STRATA_STORAGE_DRIVER="vfs")
    assert made  # vfs: the container path, for comparison
    assert _layers(layers) == _layers(as_root["cf-final"])
    tree, doc = read_image(layers)
    root_tree, root_doc = read_image(as_root["cf-final"])
    assert tree == root_tree
    # the container path gives the same, but for its init files (/.dockerenv, /dev …) in a stage's root
    assert {k: v for k, v in read_image(container)[0].items() if not k.startswith("d6/")} == {
        k: v for k, v in tree.items() if not k.startswith("d6/")
    }
    assert config_view(doc) == config_view(root_doc) and history_view(doc) == history_view(root_doc)
    # what the source's whiteout, opaque dir and links say, seen through the rootless overlay
    assert "d1/gone" not in tree and tree["d1/keep/k"][1] == 0o640
    assert sorted(k for k in tree if k.startswith("d7")) == ["d7", "d7/n"]
    assert sorted(k for k in tree if k.startswith("d1/opq")) == ["d1/opq", "d1/opq/n"]
    assert tree["d1/link"] == ("link", 0o777, 0, 0, "/real") and "d2/r2" in tree
    assert sorted(k for k in tree if k.startswith("d6")) == ["d6", "d6/r"]  # a stage is read as its image
    if shutil.which("fuse-overlayfs") is not None:  # where rootless step containers get fuse-overlayfs
        fuse, made = _build(user, final, "cf-final:fuse", STRATA_OVERLAY_MOUNT_PROGRAM="fuse-overlayfs")
        assert made == []
        assert _layers(fuse) == _layers(as_root["cf-final"])
    assert user.strata("ps", "-aq").stdout == ""


# in the user's namespace: a layer tree of two layers as the rootless unpack writes them, then held
_HOLDER = """
import os, sys, time
from pathlib import Path
from strata.build import watchdog
from strata.build.layertree import layers_root
from strata.store.root import StoreRoot
store = os.environ["STRATA_ROOT"]
base = Path(store) / "tmp" / "holder-layers"
low, high = base / "low", base / "high"
for d in (low / "opq", high / "opq"):
    d.mkdir(parents=True)
(low / "gone").write_text("g"); (low / "keep").write_text("k"); (low / "opq" / "old").write_text("o")
os.mknod(high / "gone", 0o600 | 0o020000, os.makedev(0, 0))
(high / "opq" / "new").write_text("n")
os.setxattr(high / "opq", "user.overlay.opaque", b"y")
watchdog.ensure(store)
with layers_root([low, high], StoreRoot(store).tmp) as where:
    print(os.getpid(), where, sorted(os.listdir(where)), sorted(os.listdir(f"{where}/opq")), flush=True)
    time.sleep(300)
"""


def _mounted(user: User, where: str) -> str:
    """The filesystem type mounted at ``where`` in the user's namespace ("" for none)."""
    info = user.strata("unshare", "cat", "/proc/self/mountinfo").stdout
    for line in info.splitlines():
        fields = line.split()
        if fields[4] == where:
            return fields[fields.index("-") + 1].removeprefix("fuse.")
    return ""


@pytest.mark.parametrize("program", ["", "fuse-overlayfs"])
def test_rootless_layer_tree_and_its_watchdog(user: User, program: str) -> None:
    """``layers_root`` in the user's namespace mounts (whiteout and opaque dir honoured) with the
    kernel's overlay or fuse-overlayfs; a kill -9 of its holder leaves the mount, which the watchdog (in
    the same namespaces) takes away."""
    if program and shutil.which(program) is None:
        pytest.skip(f"needs {program}")
    user.extra_env = {"STRATA_OVERLAY_MOUNT_PROGRAM": program} if program else {}
    try:
        script = _HOLDER.replace("holder-layers", f"holder{program}")
        argv = user.argv("unshare", str(user.python), "-c", script)
    finally:
        user.extra_env = {}
    proc = subprocess.Popen(argv, cwd=user.home, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    user.procs.append(proc)  # type: ignore[arg-type]
    assert proc.stdout is not None
    line = proc.stdout.readline().split(" ", 2)
    assert len(line) == 3, line
    pid, where, seen = int(line[0]), line[1], line[2].strip()
    assert seen == "['keep', 'opq'] ['new']"
    assert "/build-from-" in where and _mounted(user, where) == (program or "overlay")
    os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    deadline = time.monotonic() + 60  # a loaded machine: the watcher's interpreter may be slow to start
    while _mounted(user, where) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _mounted(user, where)
    assert not Path(where).parent.exists()
