"""``--userns=keep-id`` (Podman's): the user's uid and gid are the same inside the container, what it
writes to a bind mount belongs to the user, the image's files keep their owners (fuse-overlayfs maps
them), and a commit records container-side owners."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from rootlesshelpers import User, busybox_rootfs, free_port, http_get

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
    pytest.mark.skipif(shutil.which("fuse-overlayfs") is None, reason="needs fuse-overlayfs"),
]


def _top_layer(save_tar: Path) -> list[tuple[str, int, int]]:
    with tarfile.open(save_tar) as outer:
        manifest = outer.extractfile("manifest.json")
        assert manifest is not None
        top = json.load(manifest)[0]["Layers"][-1]
        blob = outer.extractfile(top)
        assert blob is not None
        with tarfile.open(fileobj=io.BytesIO(blob.read())) as layer:
            return [(m.name, m.uid, m.gid) for m in layer.getmembers()]


def test_keep_id_maps_the_user_to_itself(user: User) -> None:
    busybox_rootfs(user.home / "bb.tar")
    user.strata("import", "bb.tar", "kid:1")
    shared = user.home / "kid-shared"
    shared.mkdir()
    os.chown(shared, user.uid, user.gid)
    script = "id -u; id -g; stat -c '%u:%g' /etc/passwd /home/user; echo x > /shared/f; touch /tmp/mine"
    done = user.strata("run", "--name", "kid", "--userns", "keep-id", "--network", "none",
                       "-v", f"{shared}:/shared", "kid:1", "sh", "-c", script)  # fmt: skip
    try:
        assert done.stdout.splitlines() == [str(user.uid), str(user.gid), "0:0", "1000:1000"]
        assert (os.lstat(shared / "f").st_uid, os.lstat(shared / "f").st_gid) == (user.uid, user.gid)
        assert user.strata("inspect", "-f", "{{.HostConfig.UsernsMode}}", "kid").stdout == "keep-id\n"
        user.strata("commit", "kid", "kid:2")
    finally:
        user.strata("rm", "kid", check=False)
    user.strata("save", "-o", "kid2.tar", "kid:2")
    assert ("tmp/mine", user.uid, user.gid) in _top_layer(user.home / "kid2.tar")
    as_root = user.strata("run", "--rm", "--network", "none", "-u", "0", "kid:2", "stat", "-c", "%u", "/tmp/mine")
    assert as_root.stdout == f"{user.uid}\n"  # the committed owner, read back without keep-id


def test_keep_id_is_refused_as_root(tmp_path: Path) -> None:
    env = dict(os.environ, STRATA_ROOT=str(tmp_path / "store"))
    env.pop("_STRATA_USERNS", None)
    busybox_rootfs(tmp_path / "bb.tar")
    strata = [sys.executable, "-m", "strata"]
    subprocess.run([*strata, "import", str(tmp_path / "bb.tar"), "kid:1"], env=env, check=True, capture_output=True)
    done = subprocess.run([*strata, "create", "--userns", "keep-id", "kid:1", "true"],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert (done.returncode, done.stderr) == (125, "Error: keep-id is only supported in rootless mode\n")
    listed = subprocess.run([*strata, "ps", "-aq"], env=env, capture_output=True, text=True, check=True)
    assert listed.stdout == ""




def test_keep_id_on_the_default_network_with_exec_and_a_port(user: User) -> None:
    """The network namespace belongs to the container's own user namespace (made together, joined by
    path), so pasta configures it and runc 1.1's exec, which joins the user namespace first, enters it."""
    if not (user.home / "bb.tar").exists():
        busybox_rootfs(user.home / "bb.tar")
        user.strata("import", "bb.tar", "kid:1")
    port = free_port()
    user.strata("run", "-d", "--name", "kidnet", "--userns", "keep-id", "-p", f"127.0.0.1:{port}:8080", "kid:1",
                "httpd", "-f", "-p", "8080", "-h", "/var/www")  # fmt: skip
    try:
        assert http_get(port) == "hello from a rootless container\n"
        assert user.strata("exec", "kidnet", "id", "-u").stdout == f"{user.uid}\n"
        assert user.strata("exec", "-u", "0", "kidnet", "ip", "route").stdout.startswith("default via ")
        assert user.strata("restart", "-t", "1", "kidnet").stdout == "kidnet\n"
        assert http_get(port) == "hello from a rootless container\n"
    finally:
        user.strata("rm", "-f", "kidnet")
    assert list((user.home / ".local/share/strata/netns").iterdir()) == []
    mounts = user.strata("unshare", "cat", "/proc/self/mounts").stdout
    assert str(user.home) not in mounts  # the namespaces' bind mounts and the rootfs are gone


def test_keep_id_adds_the_user_to_passwd_and_group(user: User) -> None:
    """Podman's entries for the user (``name:*:uid:gid:gecos:home:/bin/sh``, the home being the working
    directory when the user's own is not mounted; ``name:x:gid:name``) in the
    container's /etc/passwd and /etc/group, bind-mounted: the image's own lines kept, a commit unchanged."""
    if not (user.home / "bb.tar").exists():
        busybox_rootfs(user.home / "bb.tar")
        user.strata("import", "bb.tar", "kid:1")
    user.strata("run", "--name", "kidgrp", "--network", "none", "kid:1", "sh", "-c", "echo root:x:0: > /etc/group")
    try:
        user.strata("commit", "kidgrp", "kidg:1")
    finally:
        user.strata("rm", "kidgrp")
    script = "id -un; id -gn; echo $?; cat /etc/passwd /etc/group; touch /tmp/x"
    done = user.strata("run", "--name", "kidpw", "--userns", "keep-id", "--network", "none", "kidg:1",
                       "sh", "-c", script)  # fmt: skip
    try:
        changed = user.strata("diff", "kidpw").stdout.splitlines()
    finally:
        user.strata("rm", "kidpw")
    assert done.stdout.splitlines() == [
        user.name, user.name, "0", "root:x:0:0:root:/root:/bin/sh",
        f"{user.name}:*:{user.uid}:{user.gid}::/:/bin/sh", "root:x:0:", f"{user.name}:x:{user.gid}:{user.name}",
    ], done.stdout + done.stderr  # fmt: skip
    assert "C /etc/passwd" not in changed and "A /etc/group" not in changed  # bind mounts, not the image's layer
    as_root = user.strata("run", "--rm", "--network", "none", "kidg:1", "cat", "/etc/passwd", "/etc/group")
    assert as_root.stdout == "root:x:0:0:root:/root:/bin/sh\nroot:x:0:\n"  # only keep-id containers get them


def test_keep_id_sets_home_as_podman(user: User) -> None:
    """Podman 4.3's HOME for keep-id (checked against podman here): the user's home directory when it is
    mounted into the container, else the working directory; ``-e HOME`` wins; the passwd entry says the same."""
    if not (user.home / "bb.tar").exists():
        busybox_rootfs(user.home / "bb.tar")
        user.strata("import", "bb.tar", "kid:1")
    script = 'echo "HOME=$HOME"; grep "^$(id -un):" /etc/passwd | cut -d: -f6'
    base = ("run", "--rm", "--userns", "keep-id", "--network", "none")
    plain = user.strata(*base, "kid:1", "sh", "-c", script).stdout
    mounted = user.strata(*base, "-v", f"{user.home}:{user.home}", "kid:1", "sh", "-c", script).stdout
    workdir = user.strata(*base, "-w", "/tmp", "kid:1", "sh", "-c", script).stdout
    given = user.strata(*base, "-e", "HOME=/given", "kid:1", "sh", "-c", script).stdout
    execed = _keep_id_exec_home(user, script)
    assert (plain, mounted, workdir, given, execed) == (
        "HOME=/\n/\n", f"HOME={user.home}\n{user.home}\n", "HOME=/tmp\n/tmp\n", "HOME=/given\n/\n",
        f"HOME={user.home}\n{user.home}\n",
    )


def _keep_id_exec_home(user: User, script: str) -> str:
    """``exec`` in a keep-id container whose home is mounted sees the same HOME (runc reads the entry)."""
    user.strata("run", "-d", "--name", "kidhome", "--userns", "keep-id", "--network", "none",
                "-v", f"{user.home}:{user.home}", "kid:1", "sleep", "300")  # fmt: skip
    try:
        return user.strata("exec", "kidhome", "sh", "-c", script).stdout
    finally:
        user.strata("rm", "-f", "kidhome")
