"""The seed's workflow end to end as an unprivileged user: ``run -i -t`` at a real terminal, commit,
history, export/import, a published port answered on 127.0.0.1 (image/registry commands are in
test_rootless_images.py, networking in test_rootless_network.py)."""

from __future__ import annotations

import shutil
import sys
import tarfile
from pathlib import Path

import pytest
from rootlesshelpers import User, busybox_rootfs, free_port, http_get

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "container"))
from ptyrun import PtySession  # the container tests' pty driver

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


@pytest.fixture(scope="module")
def image(user: User) -> str:
    busybox_rootfs(user.home / "bb.tar")
    user.strata("import", "-c", "ENV PATH=/bin", "bb.tar", "seed:1")
    return "seed:1"


def _interactive(user: User, *args: str) -> PtySession:
    argv = user.argv(*args)
    argv[0] = shutil.which(argv[0]) or argv[0]
    return PtySession(argv, {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "TERM": "xterm"})


def test_run_interactive_with_a_tty(user: User, image: str) -> None:
    session = _interactive(user, "run", "-i", "-t", "--name", "typed", "--network", "none", image, "sh")
    session.expect_prompt()
    session.sendline("id -u; tty; echo typed > /typed; exit 3")
    session.expect(b"\r\n0\r\n/dev/pts/0\r\n")
    assert session.wait() == 3
    try:
        assert user.strata("inspect", "-f", "{{.State.ExitCode}} {{.Config.Tty}}", "typed").stdout == "3 true\n"
        assert user.strata("diff", "typed").stdout == "A /typed\n"
        image_id = user.strata("commit", "-m", "typed a file", "typed", "seed:2").stdout.strip()
    finally:
        user.strata("rm", "typed")
    history = user.strata("history", "seed:2").stdout.splitlines()
    assert history[1].startswith(image_id[7:19]) and "typed a file" in history[1]
    assert user.strata("run", "--rm", "--network", "none", "seed:2", "cat", "/typed").stdout == "typed\n"


def test_export_and_import_a_container(user: User, image: str) -> None:
    user.strata("create", "--name", "exported", image, "true")
    try:
        user.strata("export", "-o", "exported.tar", "exported")
    finally:
        user.strata("rm", "exported")
    with tarfile.open(user.home / "exported.tar") as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert owners["bin/busybox"] == (0, 0) and owners["home/user"] == (1000, 1000)  # container-side owners
    assert ".dockerenv" in owners
    user.strata("import", "-c", "ENV PATH=/bin", "exported.tar", "seed:exported")
    done = user.strata("run", "--rm", "--network", "none", "seed:exported", "stat", "-c", "%u", "/home/user")
    assert done.stdout == "1000\n"
    user.strata("rmi", "seed:exported")


def test_published_port_answered_on_loopback(user: User, image: str) -> None:
    port = free_port()
    user.strata("run", "-d", "--name", "served", "-p", f"127.0.0.1:{port}:8080", image,
                "httpd", "-f", "-p", "8080", "-h", "/var/www")  # fmt: skip
    try:
        body = http_get(port, timeout=60)  # the container's httpd and pasta: slow to start on a loaded machine
    finally:
        user.strata("rm", "-f", "served")
    assert body == "hello from a rootless container\n"
