"""``--network host`` as an unprivileged user, as Podman's rootless mode: the container is on the host's
network (it reaches a listener on the host's loopback), with the host's ``/sys`` read-only (sysfs cannot be
mounted for a network namespace the user does not own: runc failed), and it cannot change the host's
network."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


def test_host_network_reaches_the_host_loopback_and_changes_nothing(user: User) -> None:
    image = import_busybox(user, "hostnet:1")
    got: list[bytes] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(120)
        port = server.getsockname()[1]

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                got.append(conn.recv(100))

        thread = threading.Thread(target=accept)
        thread.start()
        script = (f"echo from-the-container | nc 127.0.0.1 {port}; touch /sys/x 2>/dev/null; echo sys=$?; "
                  "ip link add strata0 type dummy 2>/dev/null; echo link=$?")  # fmt: skip
        done = user.strata("run", "--rm", "--network", "host", image, "sh", "-c", script)
        thread.join(timeout=120)
    assert got == [b"from-the-container\n"]
    assert done.stdout == "sys=1\nlink=2\n"  # read-only /sys; no link made on the host's network
    assert not Path("/sys/class/net/strata0").exists()
