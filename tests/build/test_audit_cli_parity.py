"""Issue 10's audit of ``strata build``'s command line next to ``DOCKER_BUILDKIT=0 docker build`` (20.10):
the help shows what the classic builder's help shows (BuildKit's flags and ``--squash`` hidden, still
accepted); ``--stream`` is accepted with the CLI's deprecation notice; ``-o``/``--output`` accepted and
ignored, as the classic builder does; the ``Sending build context`` size right-aligned in eight columns
(go-units HumanSize through ``%8v``), which a small compressed context on stdin shows."""

from __future__ import annotations

import gzip
import io
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

STREAM_GONE = """DEPRECATED: The experimental --stream flag has been removed and the build context
            will be sent non-streaming. Enable BuildKit instead with DOCKER_BUILDKIT=1
            to stream build context, see https://docs.docker.com/go/buildkit/

"""


def _ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nCOPY a.txt /a\n")
    (ctx / "a.txt").write_text("a\n")
    return ctx


def _gz_context() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("Dockerfile", f"FROM {BUSYBOX}\nCOPY a.txt /a\n".encode()), ("a.txt", b"a\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def test_help_hides_buildkit_flags(strata: Strata) -> None:
    out = strata("build", "--help").stdout
    for flag in ("--platform", "--progress", "--secret", "--ssh", "--squash", "--output", "--stream"):
        assert flag not in out
    assert "--compress" in out and "--iidfile" in out


def test_stream_is_accepted_with_docker_notice(strata: Strata, busybox: str, tmp_path: Path) -> None:
    r = strata("build", "--stream", "-t", "streamed:1", str(_ctx(tmp_path)))
    assert r.stderr == STREAM_GONE
    assert r.stdout.endswith("Successfully tagged streamed:1\n")


def test_output_is_ignored(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    r = strata("build", "-q", "-o", f"type=local,dest={tmp_path / 'out'}", "--output", "x", str(ctx))
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.stdout) and r.stderr == ""
    assert not (tmp_path / "out").exists()


def test_small_sending_size_is_right_aligned(strata: Strata, busybox: str) -> None:
    body = _gz_context()
    assert len(body) < 1000  # a size of fewer than eight characters
    r = strata("build", "-", input=body)
    first = bytes(r.stdout).split(b"\n")[0]  # type: ignore[arg-type]
    assert first == f"Sending build context to Docker daemon {str(len(body)) + 'B':>8}\r\r".encode()


def _docker(dockerd: Any, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    return subprocess.run(dockerd.argv("build", *args), env=env, capture_output=True, input=input, timeout=300)


@pytest.mark.peers
def test_help_as_docker(dockerd: Any, strata: Strata) -> None:
    theirs = _docker(dockerd, "--help").stdout.decode().replace("docker build", "strata build")
    assert strata("build", "--help").stdout == theirs


@pytest.mark.peers
def test_cli_flags_as_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    for flags in (("--stream",), ("-o", "type=local,dest=out")):
        theirs = _docker(dockerd, "-q", *flags, str(ctx))
        ours = strata("build", "-q", *flags, str(ctx))
        assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr.decode()) == (0, ours.stderr)
    body = _gz_context()
    theirs = _docker(dockerd, "-", input=body)
    ours = strata("build", "-", input=body)
    assert theirs.returncode == 0, theirs.stderr
    assert bytes(ours.stdout).split(b"\n")[0] == theirs.stdout.split(b"\n")[0]  # type: ignore[arg-type]


def test_terminated_build_dies_of_the_signal(strata: Strata, busybox: str, root: Path, tmp_path: Path) -> None:
    """SIGTERM (``kill``): the build cleans up (no container, no mount), then strata dies of the signal
    as Docker's CLI does (a shell's 143, not an interrupt's 130)."""
    import os
    import signal
    import sys

    from build_helpers import mounts_under

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN echo started && sleep 60\n")
    env = dict(os.environ, STRATA_ROOT=str(root))
    p = subprocess.Popen([sys.executable, "-m", "strata", "build", "--network", "none", str(ctx)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stdout is not None
    for line in p.stdout:
        if line == "started\n":
            break
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert (p.returncode, err) == (-signal.SIGTERM, "")
    assert strata("ps", "-aq").stdout == "" and mounts_under(root) == []


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (("-t", "UPPER"), 'invalid argument "UPPER" for "-t, --tag" flag: invalid reference format: repository name must'
                          " be lowercase"),
        (("-t", "a:b:c"), 'invalid argument "a:b:c" for "-t, --tag" flag: invalid reference format'),
        (("--build-arg", "=x"), 'invalid argument "=x" for "--build-arg" flag: invalid environment variable: =x'),
    ],
)  # fmt: skip
def test_words_checked_first(strata: Strata, busybox: str, tmp_path: Path, flags: tuple[str, ...], error: str) -> None:
    r = strata("build", *flags, str(_ctx(tmp_path)), check=False)
    assert (r.returncode, r.stdout, r.stderr) == (125, "", f"Error: {error}\nSee 'strata build --help'.\n")


def test_iidfile_as_docker_cli(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """An old ID file is removed first (a failed build leaves none); one that cannot be written: Go's
    words, exit 1, after the build's own lines."""
    ctx = _ctx(tmp_path)
    old = tmp_path / "iid"
    old.write_text("stale")
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN false\n")
    assert strata("build", "--iidfile", str(old), str(ctx), check=False).returncode == 1
    assert not old.exists()
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\n")
    r = strata("build", "--iidfile", str(tmp_path / "no" / "iid"), str(ctx), check=False)
    assert (r.returncode, r.stderr) == (1, f"Error: open {tmp_path}/no/iid: no such file or directory\n")
    assert r.stdout.splitlines()[-1].startswith("Successfully built ")


def test_dockerfile_is_a_directory(strata: Strata, busybox: str, tmp_path: Path) -> None:
    r = strata("build", "-f", str(tmp_path), str(_ctx(tmp_path)), check=False)
    assert (r.returncode, r.stderr.splitlines()[-1]) == (1, f"Error: read {tmp_path}: is a directory")


def test_unknown_network_fails_its_first_run(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """As Docker's: only a step container that runs needs the network (a metadata step, a cached build do not)."""
    ctx = _ctx(tmp_path)
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nENV A=1\n")
    assert strata("build", "--network", "nope", str(ctx)).returncode == 0
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN true\n")
    r = strata("build", "--network", "nope", str(ctx), check=False)
    assert (r.returncode, r.stderr) == (1, "Error: network nope not found\n")
    assert "Step 2/2 : RUN true" in r.stdout
