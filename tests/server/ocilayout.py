"""Build small OCI image layouts on disk (a busybox layer) for peer-tool tests, through the shared
generator (tests/imagegen.py): the library's own layout writer, in-process."""

from __future__ import annotations

import os
from pathlib import Path

from imagegen import generate, layer_tar, put

__all__ = ["make_oci_layout"]


def make_oci_layout(root: Path, layer_tars: list[Path], tag: str = "latest", extra_random: int = 0) -> str:
    """An OCI layout with one image of the given (uncompressed) layer tars; returns the manifest digest.

    ``extra_random`` adds a layer of that many random bytes (as a file in a tar) for big-image tests.
    """
    layers: list[bytes] = [p.read_bytes() for p in layer_tars]
    if extra_random:
        layers.append(layer_tar({"random.bin": os.urandom(extra_random)}))
    image = generate(root.parent / f".{root.name}-blobs", list(layers), oci=True, level=1,
                     history=["strata test"] * len(layers))
    put(image, f"oci:{root}:{tag}")
    return str(image.digest())
