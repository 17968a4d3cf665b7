"""Image commands as an unprivileged user with subordinate ids: every store command runs in a user
namespace mapped from /etc/subuid and /etc/subgid, so layers unpack with the owners the image says."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from rootlesshelpers import User, free_port, wait_port

from strata.rootless.idmap import free_range

pytestmark = pytest.mark.timeout(600)


def _rootfs(path: Path) -> None:
    """A layer with files owned by uid/gid 0 and by 1000."""
    with tarfile.open(path, "w") as tar:
        for name, owner, data in (
            ("etc/", 0, None), ("etc/rootfile", 0, b"root\n"), ("home/", 0, None),
            ("home/user/", 1000, None), ("home/user/notes", 1000, b"notes\n"),
        ):  # fmt: skip
            info = tarfile.TarInfo(name.rstrip("/"))
            info.uid = info.gid = owner
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    path.chmod(0o644)


def _store(user: User) -> Path:
    return user.home / ".local" / "share" / "strata"


def _inside_owners(user: User) -> str:
    script = 'cd "$STRATA_ROOT"/layers/*/ && stat -c "%u:%g %n" etc/rootfile home/user home/user/notes'
    return user.strata("unshare", "sh", "-c", script).stdout


def _assert_owners(user: User) -> None:
    assert _inside_owners(user).splitlines() == [
        "0:0 etc/rootfile",
        "1000:1000 home/user",
        "1000:1000 home/user/notes",
    ]
    (layer,) = [p for p in (_store(user) / "layers").iterdir() if not p.name.startswith(".")]
    assert user.subuid is not None
    sub = user.subuid[0]
    assert (os.lstat(layer / "etc/rootfile").st_uid, os.lstat(layer / "etc/rootfile").st_gid) == (
        user.uid,
        user.gid,
    )
    notes = os.lstat(layer / "home/user/notes")
    assert notes.st_uid == sub + 999  # inside uid 1 is the first subordinate uid
    assert notes.st_gid >= 100000 or notes.st_gid == sub + 999


def _create_and_remove(user: User) -> None:
    """``create`` unpacks the image's layers; ``rm`` leaves them for the image."""
    user.strata("create", "--name", "unpacked", "base:1", "true")
    _assert_owners(user)
    assert user.strata("rm", "unpacked").stdout == "unpacked\n"


def test_unshare_maps_the_subordinate_ranges(user: User) -> None:
    assert user.subuid is not None
    start, count = user.subuid
    done = user.strata("unshare", "cat", "/proc/self/uid_map")
    assert [line.split() for line in done.stdout.splitlines()] == [
        ["0", str(user.uid), "1"],
        ["1", str(start), str(count)],
    ]
    assert user.strata("unshare", "id", "-u").stdout == "0\n"
    assert user.strata("unshare", "sh", "-c", "exit 7", check=False).returncode == 7
    root = user.strata("unshare", "sh", "-c", 'echo "$STRATA_ROOT"').stdout.strip()
    assert root == str(_store(user))  # fixed outside: inside, the euid is 0


def test_image_workflow_as_a_normal_user(user: User) -> None:
    _rootfs(user.home / "rootfs.tar")
    image_id = user.strata("import", "-c", 'CMD ["/bin/sh"]', "rootfs.tar", "base:1").stdout.strip()
    assert image_id.startswith("sha256:")
    assert "base         1         " + image_id[7:19] in user.strata("images").stdout
    assert "Imported from" in user.strata("history", "base:1").stdout
    user.strata("tag", "base:1", "base:2")
    for path in (_store(user), _store(user) / "layers", _store(user) / "blobs"):
        assert os.stat(path).st_mode & 0o777 == 0o700  # private: the user's group may not pass through
    _create_and_remove(user)
    user.strata("save", "-o", "base.tar", "base:1")
    removed = user.strata("rmi", "base:1", "base:2").stdout
    assert removed.startswith("Untagged: base:1\nUntagged: base:2\nDeleted: " + image_id)
    assert [p for p in (_store(user) / "layers").iterdir() if not p.name.startswith(".")] == []
    assert user.strata("load", "-i", "base.tar").stdout == "Loaded image: base:1\n"
    assert image_id[7:19] in user.strata("images").stdout


def test_push_and_pull_with_a_registry_run_by_the_user(user: User) -> None:
    port = free_port()
    registry = user.spawn(
        "registry", "serve", "--addr", f"127.0.0.1:{port}", "--root", str(user.home / "registry")
    )
    wait_port(port, registry)
    name = f"127.0.0.1:{port}/base:1"
    user.strata("tag", "base:1", name)
    pushed = user.strata("push", name).stdout
    assert "Pushed" in pushed and "digest: sha256:" in pushed
    user.strata("rmi", "base:1", name)
    pulled = user.strata("pull", name).stdout
    assert "Pull complete" in pulled and f"Downloaded newer image for {name}" in pulled
    user.strata("tag", name, "base:1")
    _create_and_remove(user)
    assert "Deleted: sha256:" in user.strata("rmi", "base:1", name).stdout
    assert user.strata("images", "-q").stdout == ""
    registry.terminate()
    registry.wait(timeout=30)


def test_a_user_without_subordinate_ids_is_told_the_fix(make_user: Callable[..., User]) -> None:
    plain = make_user(subids=False)
    done = plain.strata("unshare", "id", check=False)
    assert done.returncode == 125
    start = free_range()  # a block no user has (the module's other user has one)
    ids = f"{start}-{start + 65535}"
    assert done.stderr == (
        f'Error: no subuid ranges found for user "{plain.name}" in /etc/subuid: add one with: '
        f"usermod --add-subuids {ids} --add-subgids {ids} {plain.name}\n"
    )
    assert plain.strata("images", "-q").stdout == ""  # image commands still run, without a namespace
    run = plain.strata("run", "--rm", "-u", "0", "busybox:1", "true", check=False)
    assert (run.returncode, run.stderr) == (
        done.returncode,
        done.stderr,
    )  # not runc's "requires user namespaces"


def test_unshare_as_root_is_refused(tmp_path: Path) -> None:
    env = dict(os.environ, STRATA_ROOT=str(tmp_path / "store"))
    env.pop("_STRATA_USERNS", None)
    done = subprocess.run(
        [sys.executable, "-m", "strata", "unshare", "id"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (125, "Error: please use unshare with rootless\n")


def test_concurrent_first_commands_share_one_namespace(make_user: Callable[..., User]) -> None:
    """The first commands of a user race to create the namespace: the lock makes them join one."""
    fresh = make_user()
    argv = fresh.argv("unshare", "readlink", "/proc/self/ns/user")
    procs = [subprocess.Popen(argv, cwd=fresh.home, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = {p.communicate(timeout=120)[0] for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outs) == 1 and next(iter(outs)).startswith("user:[")
