"""A rootless container cannot create or change anything on the host that its user could not: container root
is the user, so root-owned host files (bind-mounted) are out of reach, device nodes cannot be made, and what
it makes setuid belongs to the user or to one of the user's subordinate ids, never to host root."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


@pytest.fixture(scope="module")
def image(user: User) -> str:
    return import_busybox(user, "conf:1")


def _lines(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


ROOT_OWNED_SCRIPT = """
echo x >> /r/f; echo append=$?
busybox chmod 666 /r/f; echo chmod=$?
chown 0:0 /r/f; echo chown=$?
rm -f /r/f; echo rm=$?
touch /r/new; echo create=$?
cat /r/secret; echo read=$?
echo owner=$(stat -c %u:%g /r/f)
"""


def test_root_owned_host_files_are_out_of_reach(user: User, image: str) -> None:
    """A bind of a root-owned directory: container root can neither write, chmod, chown, delete, create
    nor read a 0600 file there; host root shows as the overflow id (nobody)."""
    rdir = user.home / "rootdir"
    rdir.mkdir(mode=0o755)
    (rdir / "f").write_text("host\n")
    (rdir / "f").chmod(0o644)
    (rdir / "secret").write_text("root only\n")
    (rdir / "secret").chmod(0o600)
    before = {n: os.lstat(rdir / n) for n in ("f", "secret")}
    done = user.strata("run", "--rm", "-u", "0", "--network", "none", "-v", f"{rdir}:/r", image,
                       "sh", "-c", ROOT_OWNED_SCRIPT)  # fmt: skip
    got = _lines(done.stdout)
    assert {k: v for k, v in got.items() if k != "owner"} == dict.fromkeys(
        ("append", "chmod", "chown", "rm", "create", "read"), "1"), done.stdout + done.stderr  # fmt: skip
    assert got["owner"] == "65534:65534"
    assert sorted(os.listdir(rdir)) == ["f", "secret"] and (rdir / "f").read_text() == "host\n"
    for name, st in before.items():
        now = os.lstat(rdir / name)
        assert (now.st_uid, now.st_gid, now.st_mode, now.st_mtime_ns) == (0, 0, st.st_mode, st.st_mtime_ns)


DEVICE_SCRIPT = """
busybox mknod /shared/null c 1 3; echo bind=$?
busybox mknod /tmp/mem c 1 1; echo rootfs=$?
busybox mknod /shared/sda b 8 0; echo block=$?
"""


def test_no_device_node_can_be_made(user: User, image: str) -> None:
    """mknod of a character or block device fails in a bind mount and in the container's own rootfs (whose
    upper dir is on the host): the user could not make one either."""
    shared = user.home / "devshared"
    shared.mkdir()
    os.chown(shared, user.uid, user.gid)
    done = user.strata("run", "--rm", "-u", "0", "--network", "none", "-v", f"{shared}:/shared", image,
                       "sh", "-c", DEVICE_SCRIPT)  # fmt: skip
    assert _lines(done.stdout) == {"bind": "1", "rootfs": "1", "block": "1"}, done.stdout + done.stderr
    assert os.listdir(shared) == []


SETUID_SCRIPT = """
cp /bin/busybox /shared/as-root && busybox chmod 4755 /shared/as-root && echo root=ok
cp /bin/busybox /shared/as-1000 && chown 1000:1000 /shared/as-1000 && busybox chmod 6755 /shared/as-1000 \
  && echo uid1000=ok
"""


def test_setuid_files_belong_to_the_user_or_its_subordinate_ids(user: User, image: str) -> None:
    """Setuid binaries container root makes on a bind mount are the user's own (container root) or one of
    its subordinate ids (container uid 1000): nothing setuid to host root, or to anyone the user is not."""
    assert user.subuid is not None
    shared = user.home / "suidshared"
    shared.mkdir()
    os.chown(shared, user.uid, user.gid)
    done = user.strata("run", "--rm", "-u", "0", "--network", "none", "-v", f"{shared}:/shared", image,
                       "sh", "-c", SETUID_SCRIPT)  # fmt: skip
    assert done.stdout.split() == ["root=ok", "uid1000=ok"], done.stdout + done.stderr
    as_root, as_1000 = os.lstat(shared / "as-root"), os.lstat(shared / "as-1000")
    assert (as_root.st_uid, as_root.st_gid) == (user.uid, user.gid)
    assert as_root.st_mode & stat.S_ISUID
    sub = user.subuid[0] + 999
    assert (as_1000.st_uid, as_1000.st_mode & (stat.S_ISUID | stat.S_ISGID)) == (sub, stat.S_ISUID | stat.S_ISGID)
    for path in shared.iterdir():
        st = os.lstat(path)
        assert st.st_uid != 0 and st.st_gid != 0, path
        assert st.st_uid == user.uid or user.subuid[0] <= st.st_uid < user.subuid[0] + user.subuid[1]
