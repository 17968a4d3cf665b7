"""Symlinks whose relative target climbs above the layer's root (``/link -> ../etc/passwd``,
``/app/up -> ../../../outside``) are ordinary in images: Docker builds them (``RUN ln -s``, ``COPY`` of a
context holding one) and its chroot unpack takes them, as the kernel resolves ``..`` at the container's
root to the root. strata keeps them as they are: in the built layer, through save/load, inside a
container, and never followed on the host (the host's files stay untouched)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

from build_helpers import Strata

DOCKERFILE = """FROM {base}
RUN ln -s ../etc/passwd /link && mkdir -p /app && ln -s ../../../../../outside /app/up
COPY ctx/ /ctx/
"""


def _layer_links(saved: Path) -> dict[str, str]:
    """Every symlink in every layer of a ``save`` archive (its ``manifest.json`` names them): name → target."""
    links: dict[str, str] = {}
    with tarfile.open(saved) as outer:
        manifest = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for name in manifest[0]["Layers"]:
            data = outer.extractfile(name).read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                links.update({x.name: x.linkname for x in layer if x.issym()})
    return links


def test_climbing_symlinks_build_save_load_and_run(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = tmp_path / "c"
    (ctx / "ctx").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=busybox))
    victim = tmp_path / "outside"
    victim.write_text("host file\n")
    os.symlink("../../" + "../" * len(ctx.parts) + str(victim).lstrip("/"), ctx / "ctx" / "uplink")

    res = strata("build", "-q", "-t", "links:1", str(ctx), check=False)
    assert res.returncode == 0, res.stderr  # refused before: "symlink target '../etc/passwd' escapes the layer"
    out = strata("run", "--rm", "links:1", "sh", "-c",
                 "head -1 /link; readlink /link; readlink /app/up; cat /app/up /ctx/uplink 2>&1; true").stdout  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "root:x:0:0:root:/root:/bin/sh"  # the container's own /etc/passwd
    assert lines[1:3] == ["../etc/passwd", "../../../../../outside"]
    assert "host file" not in out  # resolved inside the container, where /outside does not exist

    saved = tmp_path / "links.tar"
    strata("save", "-o", str(saved), "links:1")
    links = _layer_links(saved)
    assert links["link"] == "../etc/passwd" and links["app/up"] == "../../../../../outside"
    assert links["ctx/uplink"] == os.readlink(ctx / "ctx" / "uplink")
    strata("rmi", "links:1")
    assert strata("load", "-i", str(saved)).stdout.startswith("Loaded image: links:1")
    assert strata("run", "--rm", "links:1", "readlink", "/link").stdout == "../etc/passwd\n"
    assert victim.read_text() == "host file\n"
