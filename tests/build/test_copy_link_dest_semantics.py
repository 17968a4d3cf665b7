"""``COPY --link`` onto what the base already has, as BuildKit documents it ("``COPY --link /foo /bar``
is ``FROM scratch`` + ``COPY /foo /bar`` with the layers merged"; "when copying a path into a
subdirectory, ``--link`` always copies from the root of the filesystem": the existing mode is
overridden): ``COPY --link file /existingdir`` (no trailing slash) makes ``/existingdir`` that file (the
base's directory and what it held are hidden, as a file entry over a directory in a layer), and every
parent of the destination takes the link layer's 0755 and the ``--chown`` owner over the base's (``/tmp``
loses its 1777). Docker 20.10's BuildKit does not know ``--link``; the image strata makes is loaded
into Docker 20.10 and run there: Docker's engine stacks its layers to the same tree."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

DOCKERFILE = (
    f"FROM {BUSYBOX}\n"
    "RUN mkdir -p /existingdir/keep /existingdir2 /srv/owned && touch /existingdir/old"
    " && chown 7:7 /srv /srv/owned && chmod 700 /srv/owned\n"
    "COPY --link f /existingdir\n"
    "COPY f /existingdir2\n"
    "COPY --link --chown=5:6 f /tmp/sub/f\n"
    "COPY --link --chown=5:6 --chmod=600 f /srv/owned/new/\n"
    "COPY --link dir /srv/owned\n"
)
SHOW = (
    "stat -c '%a %u %g %F %n' /existingdir /existingdir2 /existingdir2/f /tmp /tmp/sub /tmp/sub/f /srv /srv/owned"
    " /srv/owned/new /srv/owned/new/f /srv/owned/d; cat /existingdir; ls /existingdir/keep 2>&1"
)
WANT = [
    "644 0 0 regular file /existingdir",
    "755 0 0 directory /existingdir2",
    "644 0 0 regular file /existingdir2/f",
    "755 5 6 directory /tmp",
    "755 5 6 directory /tmp/sub",
    "644 5 6 regular file /tmp/sub/f",
    "755 0 0 directory /srv",
    "755 0 0 directory /srv/owned",
    "755 5 6 directory /srv/owned/new",
    "600 5 6 regular file /srv/owned/new/f",
    "644 0 0 regular file /srv/owned/d",
    "f",
    "ls: /existingdir/keep: Not a directory",
]


def _ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "dir").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "f").write_text("f\n")
    (ctx / "dir" / "d").write_text("d\n")
    return ctx


def test_link_onto_existing_paths(strata: Strata, busybox: str, tmp_path: Path) -> None:
    strata("build", "-t", "linkdest:1", str(_ctx(tmp_path)))
    r = strata("run", "--rm", "linkdest:1", "sh", "-c", SHOW, check=False)
    assert r.stdout.splitlines() + r.stderr.splitlines() == WANT


def test_link_chown_on_an_existing_parent(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """The last ``--link`` copy into a directory decides its owner: 5:6 then 0:0 over the base's 7:7."""
    ctx = _ctx(tmp_path)
    (ctx / "Dockerfile").write_text(DOCKERFILE.rsplit("COPY --link dir", 1)[0])
    strata("build", "-t", "linkdest:2", str(ctx))
    r = strata("run", "--rm", "linkdest:2", "stat", "-c", "%a %u %g", "/srv", "/srv/owned")
    assert r.stdout.splitlines() == ["755 5 6", "755 5 6"]


@pytest.mark.peers
def test_link_image_in_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    env = dict(dockerd.env, DOCKER_BUILDKIT="1")
    theirs = subprocess.run(dockerd.argv("build", "--progress", "plain", str(ctx)), env=env, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert theirs.returncode == 1 and "dockerfile parse error line 3: Unknown flag: link" in theirs.stderr
    tag = f"strata-linkdest-{uuid.uuid4().hex[:8]}:1"
    strata("build", "-t", tag, str(ctx))
    saved = tmp_path / "img.tar"
    strata("save", "-o", str(saved), tag)
    try:
        subprocess.run(dockerd.argv("load", "-i", str(saved)), env=dockerd.env, check=True, capture_output=True,
                       timeout=300)  # fmt: skip
        r = subprocess.run(dockerd.argv("run", "--rm", "--network", "none", tag, "sh", "-c", SHOW), env=dockerd.env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
        assert r.stdout.splitlines() + r.stderr.splitlines() == WANT
    finally:
        subprocess.run(dockerd.argv("rmi", "-f", tag), env=dockerd.env, capture_output=True, timeout=60)
