"""A base image of another platform than the host's, as Docker 20.10's classic builder takes it: a local
image is used whatever its platform, and each step container of it (ENV, WORKDIR, RUN: the steps that
print `` ---> Running in``) is announced with the daemon's warning; a ``FROM scratch`` stage is of the
platform asked for (``--platform``), so its steps warn too and its image needs no platform of its own
afterwards. Next to ``DOCKER_BUILDKIT=0 docker build``: the same output, the same image platform."""

from __future__ import annotations

import hashlib
import io
import json
import platform
import re
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

_HOST = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
_OTHER = "s390x"  # never this machine's
WARNING = (
    f" ---> [Warning] The requested image's platform (linux/{_OTHER}) does not match the detected host platform"
    f" (linux/{_HOST}{'/v8' if _HOST == 'arm64' else ''}) and no specific platform was requested"
)
FOREIGN = "FROM {base}\nENV A=1\nWORKDIR /w\nCOPY f /f\nRUN true\n"
SCRATCH = "FROM scratch\nCOPY f /f\nENV A=1\n"
_FORMAT = "{{.Os}}/{{.Architecture}}"


def _relabel(saved: Path, out: Path, tag: str) -> Path:
    """``saved`` (a ``docker save`` of one image) as an image of ``_OTHER`` tagged ``tag``: the same
    layers (busybox still runs here), the config's ``architecture`` changed, hence a new image ID."""
    with tarfile.open(saved) as tar:
        files = {m.name: (m, tar.extractfile(m).read() if m.isfile() else None) for m in tar}  # type: ignore[union-attr]
    manifest = json.loads(files["manifest.json"][1] or b"")
    config = json.loads(files[manifest[0]["Config"]][1] or b"")
    config["architecture"] = _OTHER
    data = json.dumps(config).encode()
    skip = {"manifest.json", "repositories", "index.json", "oci-layout", manifest[0]["Config"]}  # docker-save form only
    manifest[0]["Config"], manifest[0]["RepoTags"] = hashlib.sha256(data).hexdigest() + ".json", [tag]
    with tarfile.open(out, "w") as tar:
        for name, (member, content) in files.items():
            if name not in skip:
                tar.addfile(member, io.BytesIO(content) if content is not None else None)
        for name, content in ((manifest[0]["Config"], data), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "f").write_text("f\n")
    return ctx


def _masked(output: str) -> list[str]:
    return [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in output.splitlines()]


def _foreign_base(strata: Strata, tmp_path: Path, tag: str) -> Path:
    strata("save", "-o", str(tmp_path / "bb.tar"), BUSYBOX)
    tar = _relabel(tmp_path / "bb.tar", tmp_path / "foreign.tar", tag)
    strata("load", "-i", str(tar))
    return tar


def test_a_local_base_of_another_platform_warns(strata: Strata, busybox: str, tmp_path: Path) -> None:
    _foreign_base(strata, tmp_path, "foreign:1")
    out = strata("build", "--no-cache", "-t", "fw:1", str(_ctx(tmp_path, FOREIGN.format(base="foreign:1")))).stdout
    lines = _masked(out)
    assert lines.count(WARNING) == 3, out
    assert [lines[i + 1] for i, line in enumerate(lines) if line == WARNING] == [" ---> Running in <id>"] * 3
    assert strata("image", "inspect", "-f", _FORMAT, "fw:1").stdout == f"linux/{_OTHER}\n"
    assert strata("build", "-q", str(_ctx(tmp_path, FOREIGN.format(base="foreign:1")))).stdout.startswith("sha256:")


def test_scratch_is_of_the_platform_asked_for(strata: Strata, tmp_path: Path) -> None:
    """Its steps run in containers of that platform (they warn), and the image built is the last
    step's (``Successfully built`` names it: no image of another platform made afterwards)."""
    out = strata("build", "--no-cache", "--platform", f"linux/{_OTHER}", "-t", "fs:1", str(_ctx(tmp_path, SCRATCH))).stdout
    lines = out.splitlines()
    assert _masked(out).count(WARNING) == 1, out
    assert lines[-2] == f"Successfully built {lines[-3][6:]}", out
    assert strata("image", "inspect", "-f", _FORMAT, "fs:1").stdout == f"linux/{_OTHER}\n"
    host = strata("build", "--no-cache", "-t", "fs:2", str(_ctx(tmp_path, SCRATCH))).stdout
    assert WARNING not in _masked(host), host


def _docker(dockerd: Any, ctx: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    argv = dockerd.argv("build", "--no-cache", "--network", "none", *flags, str(ctx))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=ctx)


@pytest.mark.peers
@pytest.mark.parametrize("case", ["foreign", "scratch"])
def test_platform_warnings_as_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path,
                                     case: str) -> None:  # fmt: skip
    name = f"strata-foreign-{uuid.uuid4().hex[:8]}"
    if case == "foreign":
        dockerd.run("load", "-i", str(_foreign_base(strata, tmp_path, f"{name}:base")))
        dockerfile, flags = FOREIGN.format(base=f"{name}:base"), ()
    else:
        dockerfile, flags = SCRATCH, ("--platform", f"linux/{_OTHER}")
    ctx = _ctx(tmp_path, dockerfile)
    try:
        theirs = _docker(dockerd, ctx, *flags, "-t", f"{name}:1")
        assert theirs.returncode == 0, theirs.stderr
        their_platform = dockerd.run("image", "inspect", "-f", _FORMAT, f"{name}:1").stdout
    finally:
        subprocess.run(dockerd.argv("rmi", "-f", f"{name}:1", f"{name}:base"), env=dockerd.env, capture_output=True,
                       timeout=60)  # fmt: skip
    ours = strata("build", "--no-cache", "--network", "none", *flags, "-t", f"{name}:1", str(ctx))
    assert _masked(ours.stdout) == _masked(theirs.stdout)
    assert WARNING in _masked(ours.stdout)
    assert strata("image", "inspect", "-f", _FORMAT, f"{name}:1").stdout == their_platform == f"linux/{_OTHER}\n"
