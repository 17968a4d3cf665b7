"""Rootless networking through pasta: a container's own namespace with the host's address copied in,
``-p 127.0.0.1:PORT:80`` answered on the host's loopback, the pasta process ended with the container.
User-defined networks (the rootless network namespace) are in test_rootless_usernet.py."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from rootlesshelpers import User, free_port, http_get, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
    pytest.mark.skipif(shutil.which("pasta") is None, reason="needs pasta (passt)"),
]


@pytest.fixture(scope="module")
def image(user: User) -> str:
    return import_busybox(user, "net:1")




def _store(user: User) -> Path:
    return user.home / ".local" / "share" / "strata"


def test_published_port_answers_on_the_host_loopback(user: User, image: str) -> None:
    port = free_port()
    cid = user.strata("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", image,
                      "httpd", "-f", "-p", "80", "-h", "/var/www").stdout.strip()  # fmt: skip
    pid_file = _store(user) / "containers" / cid / "pasta.pid"
    try:
        assert http_get(port) == "hello from a rootless container\n"
        assert f"127.0.0.1:{port}->80/tcp" in user.strata("ps").stdout
        assert user.strata("port", "web").stdout == f"80/tcp -> 127.0.0.1:{port}\n"
        ports = user.strata("inspect", "-f", "{{json .NetworkSettings.Ports}}", "web").stdout
        assert ports == f'{{"80/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{port}"}}]}}\n'
        pasta = int(pid_file.read_text())
        assert os.stat(f"/proc/{pasta}").st_uid == user.uid  # pasta runs as the user, not as root
        inside = user.strata("exec", "web", "ip", "route").stdout
        assert inside.startswith("default via ")  # the container has an interface of its own
    finally:
        user.strata("rm", "-f", "web")
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pasta}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pasta}").exists() or "zombie" in Path(f"/proc/{pasta}/status").read_text()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    assert list((_store(user) / "netns").iterdir()) == []


def test_a_foreground_run_with_rm_publishes_and_cleans_up(user: User, image: str) -> None:
    port = free_port()
    # it ends when told (a fixed few seconds of httpd could be over before a loaded machine got to ask)
    proc = user.spawn("run", "--rm", "--name", "fgweb", "-p", f"127.0.0.1:{port}:80", image, "sh", "-c",
                      "trap 'exit 143' TERM; httpd -p 80 -h /var/www; until [ -e /tmp/done ]; do sleep 0.1; done")  # fmt: skip
    assert http_get(port) == "hello from a rootless container\n"
    user.strata("exec", "fgweb", "touch", "/tmp/done")
    assert proc.wait(timeout=60) == 0
    assert user.strata("ps", "-aq").stdout == ""
    assert list((_store(user) / "netns").iterdir()) == []


def test_a_privileged_host_port_is_refused_naming_the_sysctl(user: User, image: str) -> None:
    first = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    if first <= 80:
        pytest.skip("unprivileged users may bind port 80 here")
    done = user.strata("run", "--rm", "-p", "80:80", image, "true", check=False)
    assert done.returncode == 125
    assert done.stderr == (
        "Error: rootlessport cannot expose privileged port 80, you can add 'net.ipv4.ip_unprivileged_port_start=80' "
        f"to /etc/sysctl.conf (currently {first}), or choose a larger port number (>= {first}): listen tcp "
        "0.0.0.0:80: bind: permission denied\n"
    )
    assert user.strata("ps", "-aq").stdout == ""


def test_restart_publishes_the_port_again(user: User, image: str) -> None:
    """The old pasta has let go of the host port before the restarted container's pasta binds it."""
    port = free_port()
    user.strata("run", "-d", "--name", "again", "-p", f"127.0.0.1:{port}:80", image,
                "httpd", "-f", "-p", "80", "-h", "/var/www")  # fmt: skip
    try:
        assert http_get(port) == "hello from a rootless container\n"
        for _ in range(2):
            assert user.strata("restart", "-t", "1", "again").stdout == "again\n"
            assert http_get(port) == "hello from a rootless container\n"
    finally:
        user.strata("rm", "-f", "again")


@pytest.mark.skipif(shutil.which("slirp4netns") is None, reason="needs slirp4netns")
def test_slirp4netns_where_asked(user: User, image: str) -> None:
    """slirp4netns (used where pasta is missing) publishes the same way, through its API socket."""
    port = free_port()
    user.extra_env = {"STRATA_ROOTLESS_NETWORK": "slirp4netns"}
    try:
        cid = user.strata("run", "-d", "--name", "slirped", "-p", f"127.0.0.1:{port}:80", image,
                          "httpd", "-f", "-p", "80", "-h", "/var/www").stdout.strip()  # fmt: skip
        assert http_get(port) == "hello from a rootless container\n"
        assert "inet 10.0.2.100/24" in user.strata("exec", "slirped", "ip", "addr", "show", "tap0").stdout
        daemon = int((_store(user) / "containers" / cid / "pasta.pid").read_text())
        assert Path(f"/proc/{daemon}/comm").read_text().strip() == "slirp4netns"
        assert user.strata("restart", "-t", "1", "slirped").stdout == "slirped\n"
        assert http_get(port) == "hello from a rootless container\n"
    finally:
        user.strata("rm", "-f", "slirped", check=False)
        user.extra_env = {}
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
