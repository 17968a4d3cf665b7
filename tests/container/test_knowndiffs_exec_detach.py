"""``exec -it`` left with the detach keys: the process runs on and, when it ends, Docker's daemon records
``exec_die`` with its exit code -- strata's CLI is gone by then, so a watcher of the exec records it. Side
by side with Docker 20.10 through real pseudo-terminals."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from container_helpers import Strata
from ptyrun import PtySession

from peers import Dockerd

pytestmark = pytest.mark.runtime


def _events(argv: list[str], env: dict[str, str], name: str, since: int, want: int) -> list[str]:
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run([*argv, "events", "--since", str(since), "--until", str(int(time.time()) + 1),
                              "--filter", f"container={name}", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}"],
                             env=env, capture_output=True, text=True, timeout=60, check=True).stdout
        lines = [line for line in out.splitlines() if line.startswith("exec_")]
        if len(lines) >= want or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def test_detached_exec_session_records_exec_die_when_it_ends(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                                            docker_busybox: str) -> None:
    name = f"kd-execdie-{uuid.uuid4().hex[:8]}"
    seen = {}
    try:
        for label, argv, env, image in (("strata", strata.argv(), strata.env, busybox_image),
                                        ("docker", dockerd.argv(), dockerd.env, docker_busybox)):
            subprocess.run([*argv, "run", "-d", "--name", name, image, "sleep", "600"], env=env, check=True,
                           capture_output=True, timeout=120)
            since = int(time.time()) - 1
            s = PtySession([*argv, "exec", "-it", name, "sh", "-c", "echo started; sleep 2; exit 5"], env)
            s.expect(b"started\r\n")
            s.send(b"\x10\x11")
            assert s.wait() == 1
            assert s.output.decode(errors="replace").endswith("read escape sequence\r\n")
            seen[label] = sorted(_events(argv, env, name, since, 3))
    finally:
        dockerd.run("rm", "-f", name, check=False)
        strata("rm", "-f", name, check=False)
    assert seen["strata"] == seen["docker"]
    assert "exec_die 5" in seen["strata"]
