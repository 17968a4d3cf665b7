"""``cp - CONTAINER:DIR`` with streams that are not whole tar archives, side by side with Docker 20.10, whose
daemon reads them with Go's archive/tar: an empty stream or a lone zero block is an empty archive, an archive
ending after its last member without the end-of-archive blocks is whole, a short stream is ``unexpected
EOF``, a block that is no header is ``archive/tar: invalid tar header`` (strata said ``invalid tar archive:
empty file`` or refused the missing end marker)."""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from typing import Any

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.peers


def _one_member_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("cp15-member")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    return buf.getvalue()


def _streams() -> list[bytes]:
    whole = _one_member_tar()
    return [b"", bytes(512), bytes(2048), b"garbage\n", b"x" * 1024, bytes(512) + b"x" * 512, whole[:1024], whole]


def _levelled(text: str) -> str:
    return text.removeprefix("Error response from daemon: ").removeprefix("Error: ")


def test_cp_from_stdin_reads_tar_streams_as_docker(strata: Strata, busybox_image: str, dockerd: Any,
                                                   docker_busybox: str) -> None:
    name = "cps15" + uuid.uuid4().hex[:6]
    sides = (("docker", dockerd.argv(), dockerd.env, docker_busybox), ("strata", strata.argv(), strata.env, busybox_image))
    seen: dict[str, list[tuple[int, str]]] = {}
    try:
        for who, argv, env, image in sides:
            subprocess.run([*argv, "create", "--name", name, image, "true"], env=env, check=True, capture_output=True)
            seen[who] = []
            for data in _streams():
                res = subprocess.run([*argv, "cp", "-", f"{name}:/tmp"], env=env, input=data, capture_output=True,
                                     timeout=120, check=False)
                seen[who].append((res.returncode, _levelled(res.stderr.decode())))
            got = subprocess.run([*argv, "cp", f"{name}:/tmp/cp15-member", "-"], env=env, capture_output=True,
                                 check=False)
            seen[who].append((got.returncode, str(len(got.stdout) > 0)))
        assert seen["strata"] == seen["docker"]
        assert seen["strata"][0] == (0, "")
        assert seen["strata"][3] == (1, "Error processing tar file(exit status 1): unexpected EOF\n")
        assert seen["strata"][6] == (0, "")
    finally:
        dockerd.run("rm", "-f", name, check=False)
