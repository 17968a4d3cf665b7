"""Issue 10's audit of where the Dockerfile comes from, next to Docker 20.10: ``build - < Dockerfile``
(stdin that is no archive is a Dockerfile, alone in the context the CLI makes of it: its Sending size is
that tar's), an empty Dockerfile named as the daemon names it (its path in the context; the CLI's
``.dockerfile.<hex>`` for one from stdin), a Dockerfile of comments only (the parser's words)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

DOCKERFILE = f"FROM {BUSYBOX}\nRUN echo from-stdin\n"


def _last_error(stderr: str) -> str:
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    return re.sub(r"^(Error: |Error response from daemon: )", "", last)


def test_dockerfile_on_stdin_is_the_context(strata: Strata, busybox: str) -> None:
    r = strata("build", "--network", "none", "-t", "from-stdin:1", "-", input=DOCKERFILE.encode())
    lines = bytes(r.stdout).decode().split("\n")  # type: ignore[arg-type]
    assert lines[0] == "Sending build context to Docker daemon  2.048kB\r\r"  # a header, a block, the end
    assert "from-stdin" in lines and lines[-2:] == ["Successfully tagged from-stdin:1", ""]


def test_dockerfile_on_stdin_has_no_other_files(strata: Strata, busybox: str) -> None:
    text = f"FROM {BUSYBOX}\nCOPY Dockerfile /d\nCOPY a.txt /a\n"
    r = strata("build", "--network", "none", "-", input=text.encode(), check=False)
    assert (r.returncode, _last_error(bytes(r.stderr).decode())) == (  # type: ignore[arg-type]
        1, "COPY failed: file not found in build context or excluded by .dockerignore: stat a.txt: file does not exist")


@pytest.mark.parametrize(
    ("files", "args", "error"),
    [
        ({"Dockerfile": ""}, (), "the Dockerfile (Dockerfile) cannot be empty"),
        ({"sub/Dockerfile": ""}, ("-f", "<ctx>/sub/Dockerfile"), "the Dockerfile (sub/Dockerfile) cannot be empty"),
        ({"Dockerfile": "# a comment\n\n"}, (), "failed to parse Dockerfile: file with no instructions"),
    ],
)
def test_empty_dockerfile(strata: Strata, busybox: str, tmp_path: Path, files: dict[str, str], args: tuple[str, ...],
                          error: str) -> None:  # fmt: skip
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    r = strata("build", *(a.replace("<ctx>", str(tmp_path)) for a in args), str(tmp_path), check=False)
    assert (r.returncode, _last_error(r.stderr)) == (1, error)


def test_empty_dockerfile_from_stdin(strata: Strata, busybox: str, tmp_path: Path) -> None:
    r = strata("build", "-f", "-", str(tmp_path), input="", check=False)
    assert r.returncode == 1
    assert re.fullmatch(r"the Dockerfile \(\.dockerfile\.[0-9a-f]{20}\) cannot be empty", _last_error(r.stderr))


@pytest.mark.peers
def test_stdin_dockerfile_as_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str) -> None:
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    for text in (DOCKERFILE, f"FROM {BUSYBOX}\nCOPY a.txt /a\n", ""):
        theirs = subprocess.run(dockerd.argv("build", "--no-cache", "--network", "none", "-"), env=env,
                                input=text.encode(), capture_output=True, timeout=300)  # fmt: skip
        ours = strata("build", "--no-cache", "--network", "none", "-", input=text.encode(), check=False)
        mask = lambda b: [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in b.decode().splitlines()]  # noqa: E731
        assert ours.returncode == theirs.returncode
        assert mask(ours.stdout) == mask(theirs.stdout)
        if theirs.returncode:
            assert _last_error(bytes(ours.stderr).decode()) == _last_error(theirs.stderr.decode())  # type: ignore[arg-type]


def _serve(directory: Path) -> Any:
    import http.server
    import threading

    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_url_context_lines(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """Docker's CLI fetches a URL context (its progress when the body ended), then sends what came; a
    URL that is no archive is a Dockerfile, alone in the context."""
    (tmp_path / "Dockerfile.txt").write_text(DOCKERFILE)
    server = _serve(tmp_path)
    try:
        url = f"http://127.0.0.1:{server.server_port}/Dockerfile.txt"
        r = strata("build", "--network", "none", url, input=b"")
    finally:
        server.shutdown()
        server.server_close()  # else the listening socket's ResourceWarning fails whichever test collects it
    line = f"Downloading build context from remote url: {url} [{'=' * 50}>]      {len(DOCKERFILE)}B/{len(DOCKERFILE)}B"
    expected = f"{line}\r{line}\r\r\nSending build context to Docker daemon  2.048kB\r\r\nStep 1/2 : "
    assert bytes(r.stdout).decode().startswith(expected)  # type: ignore[arg-type]
    assert "from-stdin" in bytes(r.stdout).decode()  # type: ignore[arg-type]


@pytest.mark.peers
def test_url_context_as_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    import io
    import tarfile

    with tarfile.open(tmp_path / "ctx.tar.gz", "w:gz") as tar:
        for name, data in (("Dockerfile", f"FROM {BUSYBOX}\nCOPY f /f\n".encode()), ("f", b"remote\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    server = _serve(tmp_path)
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    try:
        url = f"http://127.0.0.1:{server.server_port}/ctx.tar.gz"
        theirs = subprocess.run(dockerd.argv("build", "--no-cache", url), env=env, capture_output=True, timeout=300,
                                stdin=subprocess.DEVNULL)  # fmt: skip
        ours = strata("build", "--no-cache", url, input=b"")
    finally:
        server.shutdown()
        server.server_close()  # else the listening socket's ResourceWarning fails whichever test collects it
    mask = lambda b: [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in b.decode().split("\n")]  # noqa: E731
    assert mask(bytes(ours.stdout)) == mask(theirs.stdout)  # type: ignore[arg-type]
