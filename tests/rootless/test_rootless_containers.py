"""Containers as an unprivileged user: runc runs inside the user's rootless namespace (joined by every
command), so a later command reaches a container an earlier one started, and a committed layer carries
the container-side owners (0 and 1000, never the host's subordinate ids)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox, pause_pid

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


@pytest.fixture(scope="module")
def image(user: User) -> str:
    return import_busybox(user, "bb:1")


def test_every_command_joins_one_namespace(user: User, image: str) -> None:
    first = user.strata("unshare", "readlink", "/proc/self/ns/user").stdout
    second = user.strata("unshare", "readlink", "/proc/self/ns/user").stdout
    pid = pause_pid(user.uid)
    assert pid is not None
    assert first == second == os.readlink(f"/proc/{pid}/ns/user") + "\n"
    assert first != os.readlink("/proc/self/ns/user") + "\n"


def test_run_sees_the_image_owners_as_container_root(user: User, image: str) -> None:
    done = user.strata(
        "run", "--rm", "-u", "0", image, "sh", "-c", "id -u; stat -c %u:%g /bin/busybox /home/user"
    )
    assert done.stdout == "0\n0:0\n1000:1000\n"


def test_exec_and_kill_reach_a_container_an_earlier_command_started(user: User, image: str) -> None:
    user.strata("run", "-d", "--name", "sleeper", "-u", "0", image, "sleep", "300")
    try:
        assert "sleep 300" in user.strata("exec", "sleeper", "ps").stdout
        assert "Up " in user.strata("ps").stdout
    finally:
        user.strata("kill", "sleeper", check=False)
        user.strata("rm", "-f", "sleeper", check=False)
    assert user.strata("ps", "-aq").stdout == ""


def test_commit_carries_container_side_owners(user: User, image: str) -> None:
    script = "mkdir -p /home/user/new && echo hi > /home/user/new/f && chown -R 1000:1000 /home/user/new && echo r > /r"
    user.strata("run", "--name", "maker", "-u", "0", image, "sh", "-c", script)
    user.strata("commit", "maker", "made:1")
    user.strata("rm", "maker")
    user.strata("save", "-o", "made.tar", "made:1")
    with tarfile.open(user.home / "made.tar") as outer:
        layers = [m for m in outer.getmembers() if m.isfile() and m.name.endswith("/layer.tar")]
        owners = {}
        for member in layers:
            blob = outer.extractfile(member)
            assert blob is not None
            try:
                with tarfile.open(fileobj=io.BytesIO(blob.read())) as layer:
                    owners.update({m.name: (m.uid, m.gid) for m in layer.getmembers()})
            except tarfile.ReadError:
                continue  # a config or manifest
    assert owners["r"] == (0, 0)
    assert owners["home/user/new"] == owners["home/user/new/f"] == (1000, 1000)


def test_container_root_is_only_the_user_on_the_host(user: User, image: str) -> None:
    """A rootless container cannot change what the user could not: host files stay untouched, and what
    container root writes to a bind mount belongs to the user (uid 1000 inside to a subordinate uid)."""
    shared = user.home / "shared"
    shared.mkdir()
    os.chown(shared, user.uid, user.gid)
    script = (
        "echo x >> /host/passwd; echo $?; touch /host/strata-rootless-probe; echo $?; "
        "echo hi > /shared/f && mkdir /shared/d && chown 1000:1000 /shared/d && echo ok"
    )
    done = user.strata(
        "run", "--rm", "-u", "0", "-v", "/etc:/host", "-v", f"{shared}:/shared", image, "sh", "-c", script
    )
    assert done.stdout == "1\n1\nok\n"
    assert "Permission denied" in done.stderr
    assert not Path("/etc/strata-rootless-probe").exists()
    assert (os.lstat(shared / "f").st_uid, os.lstat(shared / "f").st_gid) == (user.uid, user.gid)
    assert user.subuid is not None
    assert os.lstat(shared / "d").st_uid == user.subuid[0] + 999


def test_stop_restart_and_rm_force_without_delegated_cgroups(user: User, image: str) -> None:
    """``runc kill --all`` needs the container's cgroup, which a rootless container without delegation
    lacks: stop (sleep as pid 1 ignores SIGTERM, so SIGKILL follows), restart and rm -f still end it."""
    import time

    user.strata("run", "-d", "--name", "stopper", "-u", "0", image, "sleep", "300")
    try:
        began = time.monotonic()
        assert user.strata("stop", "-t", "1", "stopper").stdout == "stopper\n"
        assert time.monotonic() - began < 20
        state = user.strata("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "stopper").stdout
        assert state == "exited 137\n"
        user.strata("restart", "-t", "1", "stopper")
        assert user.strata("inspect", "-f", "{{.State.Status}}", "stopper").stdout == "running\n"
        assert user.strata("kill", "stopper").stdout == "stopper\n"
        user.strata("start", "stopper")
        assert user.strata("rm", "-f", "stopper").stdout == "stopper\n"
    finally:
        user.strata("rm", "-f", "stopper", check=False)
    assert user.strata("ps", "-aq").stdout == ""


def test_a_killed_pause_process_is_replaced_in_the_namespace_containers_still_use(user: User, image: str) -> None:
    """Podman's rejoin: with the pause process gone, the next command joins the namespace a container's
    monitor still runs in (its overlay mount and runc state are there) and leaves a new pause process."""
    before = user.strata("unshare", "readlink", "/proc/self/ns/user").stdout
    user.strata("run", "-d", "--name", "survivor", "-u", "0", image, "sleep", "300")
    try:
        old = pause_pid(user.uid)
        assert old is not None
        os.kill(old, 9)
        assert user.strata("exec", "survivor", "true", check=False).returncode == 0
        new = pause_pid(user.uid)
        assert new is not None and new != old
        assert os.readlink(f"/proc/{new}/ns/user") + "\n" == before
        assert user.strata("stop", "-t", "1", "survivor").stdout == "survivor\n"
    finally:
        user.strata("rm", "-f", "survivor", check=False)
    assert user.strata("ps", "-aq").stdout == ""
    os.kill(pause_pid(user.uid) or 0, 9)  # nothing left in it: the next command makes a fresh namespace
    after = user.strata("unshare", "readlink", "/proc/self/ns/user").stdout
    assert after.startswith("user:[") and after != before


def test_inspect_shows_the_user_namespace_mapping(user: User, image: str) -> None:
    user.strata("create", "--name", "mapped", image, "true")
    try:
        maps = json.loads(user.strata("inspect", "-f", "{{json .HostConfig.IDMappings}}", "mapped").stdout)
        mode = user.strata("inspect", "-f", "{{json .HostConfig.UsernsMode}}", "mapped").stdout
    finally:
        user.strata("rm", "mapped")
    assert user.subuid is not None
    start, count = user.subuid
    assert maps["UidMap"] == [f"0:{user.uid}:1", f"1:{start}:{count}"]
    assert maps["GidMap"][0] == f"0:{user.gid}:1"
    assert mode == '""\n'  # Podman's default rootless mode: the user's namespace itself
