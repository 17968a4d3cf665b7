"""``--pid host``, ``--ipc host`` and ``--device HOST:OTHER`` as an unprivileged user, as Podman's rootless
mode: runc cannot mount proc (or mqueue) for a namespace the user does not own, nor make a device node, so
the host's are bound (runc failed with EPERM/ENOENT before); the container still cannot reach what the
user could not (a root process of the host stays out of its signals)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


@pytest.fixture(scope="module")
def image(user: User) -> str:
    return import_busybox(user, "hostns:1")


def test_host_pid_sees_the_host_and_cannot_signal_root(user: User, image: str) -> None:
    script = "test -d /proc/1 && echo host-pid-1; kill -0 1 2>/dev/null; echo kill=$?; touch /proc/x 2>/dev/null; echo $?"
    done = user.strata("run", "--rm", "--network", "none", "--pid", "host", image, "sh", "-c", script)
    assert os.stat("/proc/1").st_uid == 0
    assert done.stdout == "host-pid-1\nkill=1\n1\n"


def test_host_ipc_runs(user: User, image: str) -> None:
    mqueue = "yes" if os.path.isdir("/dev/mqueue") else "no"
    done = user.strata("run", "--rm", "--network", "none", "--ipc", "host", image, "sh", "-c",
                       "test -d /dev/mqueue && echo yes || echo no")  # fmt: skip
    assert done.stdout == f"{mqueue}\n"  # the host's, where it has one


def test_a_device_at_another_path_is_the_hosts(user: User, image: str) -> None:
    done = user.strata("run", "--rm", "--network", "none", "--device", "/dev/null:/dev/other-null", image, "sh", "-c",
                       "echo gone > /dev/other-null && stat -c '%t:%T' /dev/other-null")  # fmt: skip
    st = os.stat("/dev/null")
    assert done.stdout == f"{os.major(st.st_rdev):x}:{os.minor(st.st_rdev):x}\n"
