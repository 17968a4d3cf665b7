"""``exec -it`` and the detach keys side by side with Docker 20.10, through real pseudo-terminals: Ctrl-P
Ctrl-Q (or ``--detach-keys``, or the config file's ``detachKeys``) leaves the exec session with its
process still running, the CLI says ``read escape sequence`` and exits 1, as Docker's; keys that cannot
be read are refused when the exec is created (``Invalid escape keys (…) provided``), terminal or not."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_helpers import Strata
from ptyrun import PtySession

from peers import Dockerd

pytestmark = pytest.mark.runtime


class _Side:
    def __init__(self, argv: list[str], env: dict[str, str], image: str, name: str) -> None:
        self.argv, self.env, self.image, self.name = argv, env, image, name

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.argv, *args], env=self.env, capture_output=True, text=True, timeout=120,
                              check=False)


@pytest.fixture
def sides(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
          tmp_path: Path) -> Iterator[list[_Side]]:
    name = f"parity-execdetach-{uuid.uuid4().hex[:8]}"
    out = []
    for label, argv, env, image in (("strata", strata.argv(), strata.env, busybox_image),
                                    ("docker", dockerd.argv(), dockerd.env, docker_busybox)):
        config = tmp_path / f"config-{label}"
        config.mkdir()
        out.append(_Side(argv, {**env, "DOCKER_CONFIG": str(config)}, image, name))
    yield out
    dockerd.run("rm", "-f", name, check=False)


def _until_file(side: _Side, path: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while (res := side.run("exec", side.name, "cat", path)).returncode != 0:
        if time.monotonic() > deadline:
            return f"missing: {res.stdout}{res.stderr}"
        time.sleep(0.3)
    return res.stdout


def _detach_once(side: _Side, keys: bytes, marker: str, *flags: str) -> tuple[int, bool, str]:
    """An exec'd shell starts a slow write, the user types the keys: (exit code, whether the CLI said
    Docker's words, what the shell wrote after the client had gone)."""
    s = PtySession([*side.argv, "exec", "-it", *flags, side.name, "sh"], side.env)
    s.expect(b"# ")
    s.sendline(f"echo start; sleep 1; echo {marker} > /tmp/{marker}")
    s.expect(b"start\r\n")
    s.send(keys)
    code = s.wait()
    said = s.output[s.pos:].decode(errors="replace").endswith("read escape sequence\r\n")
    return code, said, _until_file(side, f"/tmp/{marker}")


def test_exec_detach_keys_leave_the_process_running_as_docker(sides: list[_Side]) -> None:
    seen = {}
    for side in sides:
        assert side.run("run", "-d", "--name", side.name, side.image, "sleep", "1000").returncode == 0
        story = [_detach_once(side, b"\x10\x11", "one"), _detach_once(side, b"\x01", "two", "--detach-keys", "ctrl-a")]
        Path(side.env["DOCKER_CONFIG"], "config.json").write_text(json.dumps({"detachKeys": "ctrl-e,e"}))
        story.append(_detach_once(side, b"\x05e", "three"))
        Path(side.env["DOCKER_CONFIG"], "config.json").write_text(json.dumps({"detachKeys": "bogus"}))
        refused = side.run("exec", side.name, "true")
        story.append((refused.returncode, refused.stderr.startswith(("Error", "Invalid")), refused.stderr.split(": ")[-1]))
        refused = side.run("exec", "-d", "--detach-keys", "ctrl-x,y,", side.name, "true")
        story.append((refused.returncode, True, refused.stderr.split(": ")[-1]))
        seen[side.argv[0]] = story
    strata_story, docker_story = seen.values()
    assert strata_story == docker_story
    assert strata_story[0] == (1, True, "one\n")
    assert strata_story[3] == (1, True, "Invalid escape keys (bogus) provided\n")
