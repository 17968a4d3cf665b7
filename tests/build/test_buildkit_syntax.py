"""BuildKit's Dockerfile syntax the classic builder lacks: ``ADD --checksum`` (checked against the
download, BuildKit's error words), ``COPY --link`` (the same tree as a plain COPY), ``--platform`` and
``FROM --platform`` (Docker's errors for a malformed one; a local image is used as Docker 20.10 does)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_helpers import BUSYBOX, Strata
from imagetree import read_image

PAYLOAD = b"the payload\n"
GOOD = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
BAD = "sha256:" + "0" * 64


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server with ``/payload.txt``; its base URL."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "payload.txt").write_bytes(PAYLOAD)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(root))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "local.txt").write_text("local\n")
    (ctx / "dir").mkdir(exist_ok=True)
    (ctx / "dir" / "f").write_text("f\n")
    return ctx


def test_add_checksum(strata: Strata, busybox: str, tmp_path: Path, served: str) -> None:
    ok = _ctx(tmp_path, f"FROM {BUSYBOX}\nADD --checksum={GOOD} {served}/payload.txt /p.txt\n")
    strata("build", "-t", "checksum:1", str(ok))
    assert strata("run", "--rm", "checksum:1", "cat", "/p.txt").stdout == PAYLOAD.decode()
    bad = _ctx(tmp_path, f"FROM {BUSYBOX}\nADD --checksum={BAD} {served}/payload.txt /p.txt\n")
    r = strata("build", "-t", "checksum:2", str(bad), check=False)
    assert r.returncode == 1
    assert r.stderr == f"Error: digest mismatch {GOOD}: {BAD}\n"
    assert strata("images", "-q", "checksum:2").stdout == "" and strata("ps", "-aq").stdout == ""


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (f"COPY --checksum={GOOD} local.txt /x", "dockerfile parse error line 2: Unknown flag: checksum"),  # Docker 20.10's
        (f"ADD --checksum={GOOD} local.txt /x", "checksum can't be specified for non-HTTP(S) sources"),
        (f"ADD --checksum={GOOD} http://127.0.0.1:1/a http://127.0.0.1:1/b /x/", "checksum can't be specified for multiple sources"),
        ("ADD --checksum=sha256:abc http://127.0.0.1:1/a /x", "invalid checksum digest length"),
        ("ADD --checksum=nodigest http://127.0.0.1:1/a /x", "invalid checksum digest format"),
        ("ADD --checksum=md5:abc http://127.0.0.1:1/a /x", "unsupported digest algorithm"),
    ],
)  # fmt: skip
def test_checksum_errors(strata: Strata, busybox: str, tmp_path: Path, line: str, error: str) -> None:
    r = strata("build", str(_ctx(tmp_path, f"FROM {BUSYBOX}\n{line}\n")), check=False)
    assert (r.returncode, r.stderr) == (1, f"Error: {error}\n")


def test_copy_link_makes_the_tree_copy_makes(strata: Strata, busybox: str, tmp_path: Path) -> None:
    trees = []
    for n, flag in enumerate(["", "--link "]):
        ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nCOPY {flag}dir /opt/dir\nCOPY {flag}--chmod=600 local.txt /opt/\n")
        strata("build", "-t", f"link:{n}", str(ctx))
        strata("save", "-o", str(tmp_path / f"{n}.tar"), f"link:{n}")
        trees.append(read_image(tmp_path / f"{n}.tar")[0])
    assert trees[0] == trees[1]
    assert any(k.endswith("opt/dir/f") for k in trees[1])


def test_platform(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, f"FROM --platform=linux/arm64 {BUSYBOX}\nRUN true\n")
    strata("build", str(ctx))  # a local image serves whatever its platform (Docker 20.10's classic builder)
    strata("build", "--platform", "linux/amd64", str(ctx))
    r = strata("build", "--platform", "foo", str(ctx), check=False)
    assert (r.returncode, r.stderr) == (1, 'Error: "foo": unknown operating system or architecture: invalid argument\n')
    assert "Step 1/" not in r.stdout
    bad = _ctx(tmp_path, f"FROM --platform=foo {BUSYBOX}\n")
    r = strata("build", str(bad), check=False)
    assert r.stderr == 'Error: failed to parse platform foo: "foo": unknown operating system or architecture: invalid argument\n'
    assert "Step 1/1 : FROM --platform=foo" in r.stdout
