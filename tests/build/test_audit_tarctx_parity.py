"""Issue 10's audit of a context tar (stdin, a URL) next to Docker 20.10: the daemon applies no
``.dockerignore`` to it (the CLI applies it to a directory it tars), it only removes ``.dockerignore``
and the Dockerfile when the patterns exclude them; and COPY's ``file:``/``dir:`` history hashes come from
the tar's own headers (its names, modes, owners), as the daemon's tarsum reads them."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

DOCKERFILE = f"FROM {BUSYBOX}\nCOPY . /x/\nRUN ls -a /x | tr '\\n' ' '\n"


def _tar(ignore: str, *, prefix: str = "", modes: tuple[int, int] = (0o644, 0o755), uid: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", DOCKERFILE.encode()), (".dockerignore", ignore.encode()), ("a.txt", b"a\n"),
                           ("b.log", b"b\n"), ("d/", b""), ("d/c.txt", b"c\n")):  # fmt: skip
            info = tarfile.TarInfo(prefix + name)
            info.size, info.mtime, info.uid, info.gid = len(data), 1_600_000_000, uid, uid
            info.mode = modes[1] if name.endswith("/") else modes[0]
            info.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _listing(stdout: bytes | str) -> str:
    text = stdout.decode() if isinstance(stdout, bytes) else stdout
    lines = text.splitlines()
    line = lines[next(i for i, line in enumerate(lines) if line.startswith(" ---> Running in ")) + 1]
    return line.split(" Removing intermediate")[0].strip()  # (no newline after the listing)


@pytest.mark.parametrize(
    ("ignore", "listing"),
    [
        ("*.log\n", ". .. .dockerignore Dockerfile a.txt b.log d"),
        ("*.log\n.dockerignore\nDockerfile\nd\n", ". .. a.txt b.log d"),
    ],
)
def test_tar_context_is_what_it_holds(strata: Strata, busybox: str, ignore: str, listing: str) -> None:
    r = strata("build", "--no-cache", "--network", "none", "-", input=_tar(ignore))
    assert _listing(r.stdout) == listing


@pytest.mark.peers
@pytest.mark.parametrize("ignore", ["*.log\n", "*.log\n.dockerignore\nDockerfile\nd\n"])
def test_tar_context_as_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, ignore: str) -> None:
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    body = _tar(ignore)
    theirs = subprocess.run(dockerd.argv("build", "--no-cache", "--network", "none", "-"), env=env, input=body,
                            capture_output=True, timeout=300)  # fmt: skip
    ours = strata("build", "--no-cache", "--network", "none", "-", input=body)
    mask = lambda b: [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in b.decode().splitlines()]  # noqa: E731
    assert mask(bytes(ours.stdout)) == mask(theirs.stdout)  # type: ignore[arg-type]


def _copy_line(strata: Strata, tag: str) -> str:
    lines = strata("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag).stdout.splitlines()
    return next(line for line in lines if "COPY" in line)


def test_tar_context_sums_its_headers(strata: Strata, busybox: str) -> None:
    """``./`` names, modes without file type bits, owner 1000: the sum Docker 20.10 gave this tar."""
    strata("build", "-q", "--network", "none", "-t", "tarsum:1", "-", input=_tar("*.log\n", prefix="./", uid=1000))
    assert _copy_line(strata, "tarsum:1") == ("/bin/sh -c #(nop) COPY dir:73da3a702b435df4b393ddbc9d00eef82535eb662f83"
                                              "f7afb0e260be8f8548ac in /x/ ")  # fmt: skip


@pytest.mark.peers
@pytest.mark.parametrize("variant", [{}, {"prefix": "./"}, {"uid": 1000, "modes": (0o600, 0o700)}])
def test_tar_context_sums_as_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str,
                                    variant: dict[str, Any]) -> None:  # fmt: skip
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    body = _tar("*.log\n", **variant)
    tag = f"tarsum-{len(variant)}-{variant.get('uid', 0)}:1"
    theirs = subprocess.run(dockerd.argv("build", "-q", "--network", "none", "-t", tag, "-"), env=env, input=body,
                            capture_output=True, timeout=300)  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    strata("build", "-q", "--network", "none", "-t", tag, "-", input=body)
    lines = dockerd.run("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag).stdout.splitlines()
    assert _copy_line(strata, tag) == next(line for line in lines if "COPY" in line)
    dockerd.run("rmi", tag)
