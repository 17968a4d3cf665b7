"""A vfs container that swaps an image directory for a symlink to a host directory cannot make
``diff``/``commit`` read or write on the host: every operation on the container's tree goes through
directory descriptors opened without following symlinks. The commit records what Docker's vfs commit
records: the symlink itself, nothing below it.

The last test makes the race (the container swaps while commit stages its changes) deterministic: it
runs the staging in-process once for every operating-system call it makes, swapping at that call.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from container_helpers import Strata

from strata.container.changes import changes, rw_size, staged_upper, write_layer_tar
from strata.container.rootfs import Rootfs
from strata.errors import StrataError

HOST_SECRET = "HOST-SECRET-CONTENT\n"


def _host_dir(tmp_path: Path) -> Path:
    host = tmp_path / "host"
    host.mkdir()
    host.chmod(0o750)
    (host / "passwd").write_text(HOST_SECRET)
    (host / "keep").write_text(HOST_SECRET)
    return host


def _host_state(host: Path) -> list[tuple[str, int, str]]:
    out = [(".", host.lstat().st_mode, "")]
    for p in sorted(host.rglob("*")):
        st = p.lstat()
        out.append((str(p.relative_to(host)), st.st_mode, p.read_text() if stat.S_ISREG(st.st_mode) else ""))
    return out


def _layer_members(strata: Strata, image: str, tmp_path: Path) -> dict[str, tuple[bytes, str, int, bytes]]:
    """name -> (type, linkname, mode, content) of the image's last layer."""
    archive = tmp_path / "img.tar"
    strata("save", "-o", str(archive), image)
    out: dict[str, tuple[bytes, str, int, bytes]] = {}
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = outer.extractfile(manifest[0]["Layers"][-1])
        assert layer is not None
        with tarfile.open(fileobj=layer, mode="r:*") as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isreg() else None
                out[m.name] = (m.type, m.linkname, m.mode, f.read() if f else b"")
    archive.unlink()
    return out


@pytest.fixture
def data_image(strata: Strata, busybox_image: str) -> str:
    """An image with a /data directory of its own (``data/file``, ``data/sub/x``)."""
    strata("run", "--storage-driver", "vfs", "--name", "mkdata", busybox_image, "sh", "-c",
           "mkdir -p /data/sub && echo image > /data/file && echo x > /data/sub/x")
    strata("commit", "mkdata", "data:1")
    strata("rm", "mkdata")
    return "data:1"


SWAP = ("rm -rf /data && ln -s {host} /data && mkdir /other && echo f > /other/f && chmod 4777 /other/f "
        "&& mknod /other/null c 1 3 && chmod 0777 /other")


def _expect_only_the_symlink(strata: Strata, image: str, host: Path, tmp_path: Path) -> None:
    members = _layer_members(strata, image, tmp_path)
    assert sorted(members) == ["data", "other", "other/f", "other/null"]
    assert members["data"][:2] == (tarfile.SYMTYPE, str(host))
    assert members["other"][0] == tarfile.DIRTYPE and members["other"][2] == 0o777
    assert members["other/f"][0] == tarfile.REGTYPE and members["other/f"][2] == 0o4777
    assert members["other/f"][3] == b"f\n"
    assert members["other/null"][0] == tarfile.CHRTYPE
    assert not any(HOST_SECRET.encode() in m[3] for m in members.values())


@pytest.mark.runtime
def test_commit_of_a_symlinked_image_dir_leaves_the_host_alone(
    strata: Strata, data_image: str, tmp_path: Path
) -> None:
    host = _host_dir(tmp_path)
    before = _host_state(host)
    strata("run", "--storage-driver", "vfs", "--name", "esc", data_image, "sh", "-c", SWAP.format(host=host))
    assert strata("diff", "esc").stdout.splitlines() == ["C /data", "A /other", "A /other/f", "A /other/null"]
    assert _host_state(host) == before
    strata("commit", "esc", "esc:1")
    assert _host_state(host) == before
    _expect_only_the_symlink(strata, "esc:1", host, tmp_path)
    size = strata("ps", "-a", "--size", "--filter", "name=esc", "--format", "{{.Size}}").stdout
    assert size.startswith(f"{len(str(host)) + 2}B ")  # the symlink and other/f; never the host's files
    # export writes the symlink too, and nothing of the host's
    exported = tmp_path / "export.tar"
    strata("export", "-o", str(exported), "esc")
    with tarfile.open(exported) as tar:
        data = tar.getmember("data")
        assert data.issym() and data.linkname == str(host)
        assert not [m.name for m in tar.getmembers() if m.name.startswith("data/")]
    assert HOST_SECRET.encode() not in exported.read_bytes()
    # the committed image runs: /data is the symlink, the image's files are gone
    out = strata("run", "--rm", "esc:1", "sh", "-c", "readlink /data; ls -ld /other | cut -c1-10")
    assert out.stdout.splitlines() == [str(host), "drwxrwxrwx"]


@pytest.mark.runtime
def test_commit_without_pause_of_a_running_container_leaves_the_host_alone(
    strata: Strata, data_image: str, tmp_path: Path
) -> None:
    host = _host_dir(tmp_path)
    before = _host_state(host)
    strata("run", "-d", "--storage-driver", "vfs", "--name", "live", data_image, "sh", "-c",
           SWAP.format(host=host) + " && touch /ready && exec sleep 1000")
    deadline = time.monotonic() + 60
    while strata("exec", "live", "test", "-e", "/ready", check=False).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    strata("commit", "--pause=false", "live", "live:1")
    strata("commit", "live", "live:2")
    assert _host_state(host) == before
    for image in ("live:1", "live:2"):
        members = _layer_members(strata, image, tmp_path)
        assert sorted(members) == ["data", "other", "other/f", "other/null", "ready"]
        assert members["data"][:2] == (tarfile.SYMTYPE, str(host))


@pytest.mark.runtime
def test_commit_without_pause_while_the_container_keeps_swapping(
    strata: Strata, data_image: str, tmp_path: Path
) -> None:
    """Not deterministic (the deterministic race is the in-process test below), but real: the container
    swaps /data between a directory and a symlink to the host as fast as it can while commit runs."""
    host = _host_dir(tmp_path)
    before = _host_state(host)
    loop = (f"mkdir -p /d2/sub && echo mine > /d2/passwd && echo y > /d2/sub/y && chmod 777 /d2; "
            f"while true; do mv /data /d1 && ln -s {host} /data && rm /data && mv /d1 /data; "
            f"mv /data /d1; ln -s {host} /data; rm /data; mv /d2 /data; mv /d1 /d2; done")
    strata("run", "-d", "--storage-driver", "vfs", "--name", "swapper", data_image, "sh", "-c", loop)
    failed = []
    for i in range(6):
        res = strata("commit", "--pause=false", "swapper", f"sw:{i}", check=False)
        assert _host_state(host) == before
        if res.returncode:
            failed.append(res.stderr)
    assert not failed  # what changes meanwhile is skipped, as Docker skips it, not an error


# --- the race, made deterministic ----------------------------------------------------------------------

_HOOKED = ("lstat", "stat", "open", "link", "mknod", "mkdir", "makedirs", "chmod", "chown", "lchown", "utime",
           "listdir", "scandir", "readlink", "getxattr", "listxattr")


class _SwapAt:
    """Wraps ``os`` functions; before the ``n``-th call it swaps ``rootfs/data`` for a symlink to the host
    (and with ``back`` it swaps the directory in again one call later)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, rootfs: Path, host: Path, n: int, back: bool) -> None:
        self.rootfs, self.host, self.n, self.back = rootfs, host, n, back
        self.calls = 0
        self.real: dict[str, Callable[..., Any]] = {}
        for name in _HOOKED:
            fn = getattr(os, name)
            self.real[name] = fn
            monkeypatch.setattr(os, name, self._wrap(fn))

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.n:
                self._swap(to_host=True)
            elif self.back and self.calls == self.n + 1:
                self._swap(to_host=False)
            return fn(*args, **kwargs)

        return wrapper

    def _swap(self, *, to_host: bool) -> None:
        data, aside = str(self.rootfs / "data"), str(self.rootfs / "data.aside")
        if to_host:
            os.rename(data, aside)
            os.symlink(str(self.host), data)
        else:
            os.unlink(data)
            os.rename(aside, data)


def _fake_vfs_container(tmp_path: Path) -> tuple[Path, Path]:
    """A vfs container directory (no runtime needed): image layer with data/passwd and data/sub/x; the
    container deleted data/sub/x, changed data/passwd, added data/new and made data 0700."""
    layer = tmp_path / "layer"
    (layer / "data" / "sub").mkdir(parents=True)
    (layer / "data" / "passwd").write_text("image\n")
    (layer / "data" / "sub" / "x").write_text("x\n")
    cdir = tmp_path / "container"
    Rootfs(cdir, "vfs").prepare([layer])
    rootfs = cdir / "rootfs"
    (rootfs / "data" / "sub" / "x").unlink()
    (rootfs / "data" / "passwd").write_text("changed by the container\n")
    (rootfs / "data" / "new").write_text("payload\n")
    (rootfs / "data").chmod(0o700)
    return cdir, rootfs


def _stage(cdir: Path, scratch: Path) -> bytes | None:
    buf = io.BytesIO()
    try:
        with staged_upper(cdir, "vfs", scratch) as upper:
            write_layer_tar(upper, buf)
    except (OSError, StrataError):
        return None  # a race may make the commit fail; it must never write on the host
    return buf.getvalue()


def _interleavings(total: int) -> Iterator[tuple[int, bool]]:
    for n in range(1, total + 2):
        yield n, False
        yield n, True


def test_staging_racing_a_symlink_swap_at_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = _host_dir(tmp_path)
    before = _host_state(host)
    cdir, rootfs = _fake_vfs_container(tmp_path)
    # unhooked: what the commit holds without a race, and how many calls the staging makes
    counter = _SwapAt(monkeypatch, rootfs, host, 0, False)
    clean = _stage(cdir, tmp_path / "scratch0")
    assert clean is not None
    with tarfile.open(fileobj=io.BytesIO(clean)) as tar:
        assert sorted(tar.getnames()) == ["data", "data/new", "data/passwd", "data/sub", "data/sub/.wh.x"]
    total = counter.calls
    monkeypatch.undo()
    assert total > 10
    for i, (n, back) in enumerate(_interleavings(total)):
        with monkeypatch.context() as mp:
            _SwapAt(mp, rootfs, host, n, back)
            layer = _stage(cdir, tmp_path / f"scratch{i + 1}")
        assert _host_state(host) == before, f"the host changed with a swap at call {n} (back={back})"
        leaked = layer is not None and HOST_SECRET.encode() in layer
        assert not leaked, f"a host file's content is in the layer with a swap at call {n} (back={back})"
        # put the container's tree back as it was
        if (rootfs / "data.aside").exists():
            os.unlink(rootfs / "data")
            os.rename(rootfs / "data.aside", rootfs / "data")
    assert changes(cdir, "vfs") == [("C", "/data"), ("A", "/data/new"), ("C", "/data/passwd"),
                                    ("C", "/data/sub"), ("D", "/data/sub/x")]
    assert rw_size(cdir, "vfs") == len("payload\n") + len("changed by the container\n")


def test_diff_and_size_of_a_symlinked_dir_stay_in_the_container(tmp_path: Path) -> None:
    host = _host_dir(tmp_path)
    cdir, rootfs = _fake_vfs_container(tmp_path)
    os.rename(rootfs / "data", rootfs / "gone")
    os.symlink(str(host), rootfs / "data")
    assert changes(cdir, "vfs") == [("C", "/data"), ("A", "/gone"), ("A", "/gone/new"),
                                    ("A", "/gone/passwd"), ("A", "/gone/sub")]
    assert rw_size(cdir, "vfs") == len(str(host)) + len("payload\n") + len("changed by the container\n")


def test_overlay_diff_does_not_look_through_a_layer_symlink(tmp_path: Path) -> None:
    """An image layer's symlink (``etc -> <host dir>``) is not followed when an upper entry is looked up
    in the lower layers: the host's ``passwd`` does not make ``/etc/passwd`` a change."""
    host = _host_dir(tmp_path)
    layer = tmp_path / "layer"
    layer.mkdir()
    os.symlink(str(host), layer / "etc")
    cdir = tmp_path / "container"
    Rootfs(cdir, "overlay").prepare([layer])
    (cdir / "upper" / "etc").mkdir()
    (cdir / "upper" / "etc" / "passwd").write_text("mine\n")
    (cdir / "upper" / "etc" / "keep").symlink_to("/nowhere")
    assert changes(cdir, "overlay") == [("C", "/etc"), ("A", "/etc/keep"), ("A", "/etc/passwd")]
    assert rw_size(cdir, "overlay") == len("mine\n") + len("/nowhere")


def test_walk_tree_never_follows_and_closes_what_it_opens(tmp_path: Path) -> None:
    from strata.archive.dirs import walk_tree

    host = _host_dir(tmp_path)
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("f")
    os.symlink(str(host), tree / "a" / "link")
    fds_before = len(os.listdir("/proc/self/fd"))
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        seen = [(e.rel, stat.S_IFMT(e.st.st_mode), e.fd is not None) for e in walk_tree(fd)]
        walker = walk_tree(fd)
        next(walker), next(walker)
        walker.close()  # stopped half-way: its descriptors are closed
    finally:
        os.close(fd)
    assert seen == [("a", stat.S_IFDIR, True), ("a/b", stat.S_IFDIR, True), ("a/b/f", stat.S_IFREG, False),
                    ("a/link", stat.S_IFLNK, False)]
    assert len(os.listdir("/proc/self/fd")) == fds_before


@pytest.mark.runtime
def test_vfs_diff_compares_as_docker_vfs(strata: Strata, busybox_image: str) -> None:
    """Recorded from Docker 20.10 with ``--storage-driver vfs`` running the same script: a directory whose
    only change is its mtime (a file made and removed in /tmp) is not reported."""
    strata("run", "--storage-driver", "vfs", "--name", "dv", busybox_image, "sh", "-c",
           "echo new > /added; rm /etc/group; echo more >> /etc/passwd; touch /tmp/a; rm /tmp/a")
    assert strata("diff", "dv").stdout.splitlines() == ["A /added", "C /etc", "D /etc/group", "C /etc/passwd"]
