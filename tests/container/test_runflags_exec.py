"""``exec --detach-keys`` and the detach keys of ``exec -it`` side by side with Docker 20.10, through real
pseudo-terminals: the keys (Docker's ``ctrl-p,ctrl-q`` or the flag's) leave the process running, the CLI
says ``read escape sequence`` and exits 1; keys the daemon cannot read are refused."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
from container_helpers import Strata
from ptyrun import PtySession

from peers import Dockerd

pytestmark = [pytest.mark.runtime, pytest.mark.peers]


def _story(argv: list[str], env: dict[str, str], name: str) -> list[object]:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*argv, *args], env=env, capture_output=True, text=True, check=check, timeout=120)

    seen: list[object] = []
    for keys, typed in ((None, b"\x10\x11"), ("ctrl-a,x", b"\x01x")):
        s = PtySession([*argv, "exec", "-it", *(["--detach-keys", keys] if keys else []), name, "sh"], env)
        s.expect(b"# ")
        s.sendline("echo hello-exec")
        s.expect(b"hello-exec\r\n")
        s.expect(b"# ")
        time.sleep(0.3)
        s.send(typed)
        code = s.wait()
        seen.append((code, s.output.decode(errors="replace").endswith("read escape sequence\r\n")))
    time.sleep(0.5)  # a shell that got SIGHUP would be gone by now
    ps = run("exec", name, "ps", "-o", "comm").stdout.split()
    seen.append(ps.count("sh"))
    bad = run("exec", "--detach-keys", "foo", name, "echo", "x", check=False)
    seen.append((bad.returncode, bad.stdout, bad.stderr.replace("Error response from daemon: ", "")
                 .replace("Error: ", "")))
    ok = run("exec", "-i", "--detach-keys", "ctrl-a,x", name, "echo", "plain")
    seen.append((ok.returncode, ok.stdout))
    return seen


def test_exec_detach_keys_as_dockers(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                     docker_busybox: str) -> None:
    name = f"parity-exec-{uuid.uuid4().hex[:8]}"
    strata("run", "-d", "--name", name, busybox_image, "sleep", "300")
    dockerd.run("run", "-d", "--name", name, docker_busybox, "sleep", "300")
    try:
        ours = _story(strata.argv(), {**strata.env, "DOCKER_CONFIG": os.devnull + "-none"}, name)
        theirs = _story(dockerd.argv(), dockerd.env, name)
        assert ours == theirs == [(1, True), (1, True), 2, (1, "", "Invalid escape keys (foo) provided\n"),
                                  (0, "plain\n")]
    finally:
        strata("rm", "-f", name, check=False)
        dockerd.run("rm", "-f", name, check=False)
