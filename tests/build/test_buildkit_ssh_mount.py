"""``--ssh`` and ``RUN --mount=type=ssh`` as BuildKit does them: a real ``ssh-agent`` (Debian's
openssh-client) forwarded into the step (``ssh-add -l`` inside lists its key), ``$SSH_AUTH_SOCK`` the first
ssh mount's target, a socket 0600 and root's unless the mount says, ``--ssh id=<keyfile>`` a key of its own,
nothing left in the image; Docker's CLI's errors for bad ``--ssh`` values. Next to Docker 20.10's BuildKit."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata, mounts_under

pytestmark = pytest.mark.skipif(shutil.which("ssh-agent") is None, reason="openssh-client is not installed")
SHOW = " | sed 's/^/SHOW /'"
STEPS = (
    f"FROM {BUSYBOX}\nCOPY sshadd/ /\n"
    f"RUN --mount=type=ssh (echo \"sock=$SSH_AUTH_SOCK\"; stat -c '%a %u %g %F' $SSH_AUTH_SOCK; ssh-add -l | cut -d' ' -f3){SHOW}\n"
    "RUN --mount=type=ssh,id=other,target=/agent,mode=0660,uid=5,gid=6 --mount=type=ssh (echo $SSH_AUTH_SOCK;"
    f" stat -c '%a %u %g' /agent /run/buildkit/ssh_agent.1; ssh-add -l | cut -d' ' -f3;"
    f" SSH_AUTH_SOCK=/run/buildkit/ssh_agent.1 ssh-add -l | cut -d' ' -f3){SHOW}\n"
    f"RUN --mount=type=ssh,id=absent (echo \"[$SSH_AUTH_SOCK]\"; test -S /run/buildkit/ssh_agent.0 || echo none){SHOW}\n"
    f"RUN (find / -xdev -type s | wc -l; echo \"[$SSH_AUTH_SOCK]\"){SHOW}\n"
)  # fmt: skip
WANT = [
    "sock=/run/buildkit/ssh_agent.0", "600 0 0 socket", "agent-key",
    "/agent", "660 5 6", "600 0 0", "", "agent-key",
    "[/run/buildkit/ssh_agent.0]", "none",
    "0", "[]",
]  # fmt: skip


def _keygen(path: Path, comment: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[str]:
    """A real ssh-agent holding one key (``agent-key``), on a short socket path."""
    home = tempfile.mkdtemp(prefix="strata-test-ssh-")
    sock = os.path.join(home, "agent")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60  # the agent's start, late on a loaded machine
        while not os.path.exists(sock) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        key = _keygen(tmp_path / "agent_key", "agent-key")
        subprocess.run(["ssh-add", "-q", str(key)], env=dict(os.environ, SSH_AUTH_SOCK=sock), check=True,
                       capture_output=True)  # fmt: skip
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    """The Dockerfile, the host's ssh-add with its libraries (busybox has none) and a key file."""
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    tree = ctx / "sshadd"
    ldd = subprocess.run(["ldd", "/usr/bin/ssh-add"], capture_output=True, text=True, check=True).stdout
    for path in ["/usr/bin/ssh-add", *re.findall(r"(/\S+) \(0x", ldd)]:
        dest = tree / os.path.realpath(path).lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), dest)
        if os.path.realpath(path) != path:
            (tree / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            if not (tree / path.lstrip("/")).exists():
                (tree / path.lstrip("/")).symlink_to(os.path.realpath(path))
    _keygen(ctx / "file_key", "file-key")
    (ctx / ".dockerignore").write_text("file_key\nfile_key.pub\n")
    return ctx


def _shown(output: str) -> list[str]:
    return [re.sub(r"^.*?SHOW ", "", line) for line in output.splitlines() if "SHOW " in line and "RUN " not in line]


def test_ssh_agent_forwarded(strata: Strata, busybox: str, agent: str, root: Path, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, STEPS)
    r = strata("build", "-t", "ssh:1", "--ssh", f"default={agent}", "--ssh", f"other={ctx / 'file_key'}", str(ctx))
    assert _shown(r.stdout) == WANT, r.stdout
    assert mounts_under(root) == []
    assert strata("ps", "-aq").stdout == ""
    assert "SSH_AUTH_SOCK" not in strata("inspect", "--format", "{{json .Config.Env}}", "ssh:1").stdout


def test_ssh_default_is_the_environment_agent(strata: Strata, busybox: str, agent: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nCOPY sshadd/ /\nRUN --mount=type=ssh,required ssh-add -l{SHOW}\n")
    monkeypatch.setenv("SSH_AUTH_SOCK", agent)
    shown = _shown(strata("build", "--ssh", "default", str(ctx)).stdout)
    assert len(shown) == 1 and shown[0].endswith(" agent-key (ED25519)"), shown


@pytest.mark.parametrize(
    ("flags", "mount", "error"),
    [
        (("--ssh", "default"), "", "could not parse ssh: [default]: invalid empty ssh agent socket, make sure SSH_AUTH_SOCK is set"),
        (("--ssh", "default=/nonexistent"), "", "could not parse ssh: [default=/nonexistent]: stat /nonexistent: no such file or directory"),
        (("--ssh", "a={sock}", "--ssh", "a={sock}"), "", "could not parse ssh: [a={sock} a={sock}]: invalid duplicate ID a"),
        (("--ssh", "a={sock},{sock}"), "", "could not parse ssh: [a={sock},{sock}]: only single socket allowed"),
        (("--ssh", "a=Dockerfile"), "", "could not parse ssh: [a=Dockerfile]: failed to parse Dockerfile: ssh: no key found"),
        (("--ssh", "a=file_key,{sock}"), "", "could not parse ssh: [a=file_key,{sock}]: invalid combination of keys and sockets"),
        ((), "type=ssh,required", 'no SSH key "" forwarded from the client'),
        (("--ssh", "default={sock}"), "type=ssh,id=nope,required", "unset ssh forward key nope"),
    ],
)  # fmt: skip
def test_ssh_errors(strata: Strata, busybox: str, agent: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    flags: tuple[str, ...], mount: str, error: str) -> None:  # fmt: skip
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN {'--mount=' + mount if mount else ''} true\n")
    r = strata("build", *(f.format(sock=agent) for f in flags), str(ctx), check=False, cwd=ctx)
    assert (r.returncode, r.stderr) == (1, f"Error: {error.format(sock=agent)}\n")
    assert strata("ps", "-aq").stdout == ""


def _docker(dockerd: Any, ctx: Path, *flags: str, sock: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in dict(dockerd.env, DOCKER_BUILDKIT="1").items() if k != "SSH_AUTH_SOCK"}
    if sock:
        env["SSH_AUTH_SOCK"] = sock
    argv = dockerd.argv("build", "--progress", "plain", "--network", "none", "--no-cache", *flags, str(ctx))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=ctx)


@pytest.mark.peers
def test_ssh_agent_forwarded_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, agent: str,
                                         tmp_path: Path) -> None:  # fmt: skip
    ctx = _ctx(tmp_path, STEPS)
    flags = ("--ssh", f"default={agent}", "--ssh", f"other={ctx / 'file_key'}")
    theirs = _docker(dockerd, ctx, *flags)
    assert theirs.returncode == 0, theirs.stderr
    assert _shown(strata("build", *flags, str(ctx)).stdout) == _shown(theirs.stderr) == WANT


@pytest.mark.peers
@pytest.mark.parametrize("case", range(8))
def test_ssh_errors_as_buildkit(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, agent: str,
                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: int) -> None:  # fmt: skip
    """Docker's CLI prints its own error as is; strata's is that after ``Error: ``."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    flags, mount, _ = test_ssh_errors.pytestmark[0].args[1][case]  # type: ignore[attr-defined]
    flags = tuple(f.format(sock=agent) for f in flags)
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN {'--mount=' + mount if mount else ''} true\n")
    theirs = _docker(dockerd, ctx, *flags)
    ours = strata("build", *flags, str(ctx), check=False, cwd=ctx)
    assert theirs.returncode == ours.returncode == 1
    last = [line for line in theirs.stderr.splitlines() if line.strip()][-1]
    assert last.endswith(ours.stderr[len("Error: ") :].rstrip("\n")), (last, ours.stderr)
