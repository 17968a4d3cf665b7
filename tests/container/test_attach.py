"""``attach`` and detach keys side by side with Docker 20.10, driven through real pseudo-terminals: Ctrl-P
Ctrl-Q leaves ``run -it``, ``start -ai`` and ``attach`` with the container still running, ``attach``
returns to the running session (its screen redrawn), ``--detach-keys`` and the config file's
``detachKeys`` change the keys; exit codes, streams and signals (``--sig-proxy``) as Docker's."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from container_helpers import Strata
from ptyrun import PtySession

from peers import Dockerd

pytestmark = pytest.mark.runtime

DETACH = b"\x10\x11"


class Tool:
    """One side: strata or Docker's CLI, with its image and an environment (a private client config)."""

    def __init__(self, argv: list[str], env: dict[str, str], image: str, name: str) -> None:
        self.argv, self.env, self.image, self.name = argv, env, image, name

    def run(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.argv, *args], env=self.env, input=input, capture_output=True, timeout=120,
                              check=False)

    def pty(self, *args: str) -> PtySession:
        return PtySession([*self.argv, *args], self.env)

    def state(self) -> str:
        return self.run("inspect", "-f", "{{.State.Status}}", self.name).stdout.decode().strip()


@pytest.fixture
def tools(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
          tmp_path: Path) -> Iterator[list[Tool]]:
    name = f"parity-attach-{uuid.uuid4().hex[:8]}"
    out = []
    for label, argv, env, image in (("strata", strata.argv(), strata.env, busybox_image),
                                    ("docker", dockerd.argv(), dockerd.env, docker_busybox)):
        config = tmp_path / f"config-{label}"
        config.mkdir()
        out.append(Tool(argv, {**env, "DOCKER_CONFIG": str(config)}, image, name))
    yield out
    dockerd.run("rm", "-f", name, check=False)


def _clean(text: bytes) -> str:
    """What a user reads, the program's terminal queries (``ESC[6n``), its prompt redraws (how many a
    window size change makes depends on timing) and Docker's prefixes levelled."""
    out = text.decode(errors="replace").replace("\x1b[6n", "").replace("\r/ # \x1b[J", "")
    return re.sub(r"(^|\n)Error: ", r"\1", out)


def _until_seen(s: PtySession, needle: bytes, timeout: float = 60.0) -> None:
    """Until ``needle`` has come after the last match; the position stays (what follows is compared)."""
    pos = s.pos
    s.expect(needle, timeout)
    s.pos = pos


def _until_line(stream: IO[bytes], line: bytes, timeout: float = 60.0) -> None:
    """Read ``stream`` until ``line`` came: output of the container reached the client, so it is attached
    (and its signal handlers are set: Docker's CLI and strata set them before they copy output)."""
    deadline = time.monotonic() + timeout
    while select.select([stream], [], [], max(0.0, deadline - time.monotonic()))[0]:
        got = stream.readline()
        if got == line:
            return
        assert got, "the stream ended"
    raise AssertionError(f"{line!r} not seen in {timeout}s")


def _without(out: bytes, line: bytes) -> bytes:
    return b"".join(x for x in out.splitlines(keepends=True) if x != line)


def _session(tool: Tool) -> dict[str, object]:
    """The whole detach/reattach story on one side; what the user saw and the exit codes."""
    seen: dict[str, object] = {}
    s = tool.pty("run", "-it", "--name", tool.name, tool.image, "sh")
    s.expect(b"# ")
    s.sendline("echo first")
    s.expect(b"first\r\n")
    _until_seen(s, b"# ")  # the prompt after it is part of what the user saw
    s.send(DETACH)
    seen["run -it"] = (s.wait(), _clean(s.output).endswith("first\r\n/ # "))
    seen["after run -it"] = tool.state()

    s = tool.pty("attach", tool.name)
    s.expect(b"\x1b[J")  # the shell redraws its prompt for the new window size
    s.sendline("echo second")
    s.expect(b"second\r\n")
    _until_seen(s, b"# ")
    s.send(DETACH)
    seen["attach"] = (s.wait(), _clean(s.output[s.pos:]))
    seen["after attach"] = tool.state()

    s = tool.pty("attach", "--detach-keys", "ctrl-a,x", tool.name)
    s.expect(b"\x1b[J")
    s.sendline("echo third")
    s.expect(b"third\r\n")
    _until_seen(s, b"# ")
    s.send(b"\x01x")
    seen["--detach-keys"] = (s.wait(), _clean(s.output[s.pos:]))

    Path(tool.env["DOCKER_CONFIG"], "config.json").write_text(json.dumps({"detachKeys": "ctrl-e,e"}))
    s = tool.pty("attach", tool.name)
    s.expect(b"\x1b[J")
    time.sleep(0.3)
    s.send(b"\x05e")
    seen["detachKeys"] = (s.wait(), _clean(s.output[s.pos:]))
    os.unlink(Path(tool.env["DOCKER_CONFIG"], "config.json"))

    s = tool.pty("attach", tool.name)
    s.expect(b"\x1b[J")
    s.sendline("exit 3")
    seen["exit"] = s.wait()
    seen["after exit"] = tool.state()

    s = tool.pty("attach", tool.name)
    seen["stopped"] = (s.wait(), _clean(s.output))
    s = tool.pty("start", "-ai", tool.name)
    s.expect(b"# ")
    time.sleep(0.3)
    s.send(DETACH)
    seen["start -ai"] = s.wait()
    seen["after start -ai"] = tool.state()
    tool.run("pause", tool.name)
    s = tool.pty("attach", tool.name)
    seen["paused"] = (s.wait(), _clean(s.output))
    tool.run("unpause", tool.name)
    return seen


def test_detach_and_reattach_match_docker(tools: list[Tool]) -> None:
    ours, theirs = (_session(t) for t in tools)
    assert ours == theirs
    assert ours["run -it"] == (0, True) and ours["after run -it"] == "running"
    assert ours["attach"][0] == 1 and str(ours["attach"][1]).endswith("read escape sequence\r\n")  # type: ignore[index]
    assert ours["exit"] == 3 and ours["after exit"] == "exited"
    assert ours["start -ai"] == 0 and ours["after start -ai"] == "running"


def test_attach_streams_and_signals_match_docker(tools: list[Tool]) -> None:
    """Without a terminal: stdin reaches a ``-i`` container, stdout and stderr stay apart, the exit code
    comes back; a signal to ``attach`` reaches the container unless ``--sig-proxy=false``."""
    seen = []
    for tool in tools:
        tool.run("run", "-di", "--name", tool.name, tool.image, "sh")
        with subprocess.Popen([*tool.argv, "attach", tool.name], env=tool.env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
            assert p.stdin is not None and p.stdout is not None and p.stderr is not None
            p.stdin.write(b"echo ready\n")  # not read before the client is attached
            p.stdin.flush()
            _until_line(p.stdout, b"ready\n")  # attached, both ways
            p.stdin.write(b"echo out; echo err >&2; sleep 1; exit 4\n")
            p.stdin.flush()  # kept open until the end: Docker's CLI may drop output once its stdin is closed
            lines = [p.stdout.readline(), p.stderr.readline()]
            result: list[object] = [p.wait(timeout=60), *lines]
        tool.run("rm", "-f", tool.name)
        # the ticks tell when the client is attached (no fixed wait: slow on a loaded machine)
        script = "trap 'echo got TERM; exit 9' TERM; while true; do echo tick; sleep 0.2; done"
        for proxy in ("true", "false"):
            tool.run("run", "-d", "--name", tool.name, tool.image, "sh", "-c", script)
            with subprocess.Popen([*tool.argv, "attach", f"--sig-proxy={proxy}", tool.name], env=tool.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
                assert p.stdout is not None
                _until_line(p.stdout, b"tick\n")
                p.send_signal(signal.SIGTERM)
                out, _ = p.communicate(timeout=60)
            result += [p.returncode, _without(out, b"tick\n"), tool.state()]
            tool.run("rm", "-f", tool.name)
        seen.append(result)
    assert seen[0] == seen[1]
    assert seen[0][:3] == [4, b"out\n", b"err\n"]
    assert seen[0][3:6] == [9, b"got TERM\n", "exited"]
    assert seen[0][6] == -signal.SIGTERM and seen[0][8] == "running"


def test_run_attach_flags_match_docker(tools: list[Tool]) -> None:
    """``run -a STREAM`` (only the streams named; ``-i`` attaches stdin anyway), its errors, and
    ``run --sig-proxy=false``: a signal ends the CLI, the container goes on."""
    script = "echo out; echo err >&2; exit 3"
    seen = []
    for tool in tools:
        result: list[object] = []
        for args, stdin in ((["-a", "bogus", tool.image, "true"], None), (["-d", "-a", "stdout", tool.image, "true"], None),
                            (["--rm", "-a", "stdout", tool.image, "sh", "-c", script], None),
                            (["--rm", "-a", "STDERR", tool.image, "sh", "-c", script], None),
                            (["--rm", "-i", "-a", "stdout", tool.image, "cat"], b"hi\n"),
                            (["--rm", "-a", "stdin", "-a", "stdout", tool.image, "cat"], b"hi\n"),
                            (["--rm", "-i", "--sig-proxy=false", tool.image, "sh", "-c", "cat; " + script], b"in\n")):
            res = tool.run("run", *args, input=stdin)
            result.append((res.returncode, res.stdout, _clean(res.stderr).replace("strata", "docker")))
        trap = "trap 'echo got TERM; exit 9' TERM; while true; do echo tick; sleep 0.2; done"
        for proxy in ("true", "false"):
            with subprocess.Popen([*tool.argv, "run", "--name", tool.name, f"--sig-proxy={proxy}", tool.image, "sh",
                                   "-c", trap], env=tool.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
                assert p.stdout is not None
                _until_line(p.stdout, b"tick\n")  # running, and its output reaches the client
                p.send_signal(signal.SIGTERM)
                out, _ = p.communicate(timeout=60)
            result.append((p.returncode, _without(out, b"tick\n"), tool.state()))
            tool.run("rm", "-f", tool.name)
        seen.append(result)
    assert seen[0] == seen[1]
    assert seen[0][-2] == (9, b"got TERM\n", "exited")
    assert seen[0][-1] == (-signal.SIGTERM, b"", "running")


def test_detach_key_parsing_and_escape() -> None:
    """Docker's ``term.ToBytes`` and escape proxy: held bytes that turn out not to be the keys go on."""
    from strata.container.attach import _Escape, parse_detach_keys
    from strata.errors import StrataError

    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x,ctrl-@,ctrl-_,ctrl-[") == b"\x01x\x00\x1f\x1b"
    for bad in ("ctrl-1", "ctrl-", "ab", ""):
        with pytest.raises(StrataError):
            parse_detach_keys(bad)
    esc = _Escape(b"\x10\x11")
    assert esc.feed(b"ab\x10") == (b"ab", False)
    assert esc.feed(b"c") == (b"\x10c", False)
    assert esc.feed(b"\x10") == (b"", False)
    assert esc.feed(b"\x11rest") == (b"", True)
