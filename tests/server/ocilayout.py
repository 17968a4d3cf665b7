"""Build small OCI image layouts on disk (a busybox layer) for peer-tool tests."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

__all__ = ["make_oci_layout"]


def _write_blob(root: Path, data: bytes) -> dict[str, object]:
    hexd = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / hexd).write_bytes(data)
    return {"digest": f"sha256:{hexd}", "size": len(data)}


def make_oci_layout(root: Path, layer_tars: list[Path], tag: str = "latest", extra_random: int = 0) -> str:
    """An OCI layout with one image of the given (uncompressed) layer tars; returns the manifest digest.

    ``extra_random`` adds a layer of that many random bytes (as a file in a tar) for big-image tests.
    """
    import io
    import tarfile

    root.mkdir(parents=True, exist_ok=True)
    layers, diff_ids = [], []
    raws = [p.read_bytes() for p in layer_tars]
    if extra_random:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            info = tarfile.TarInfo("random.bin")
            info.size = extra_random
            tf.addfile(info, io.BytesIO(os.urandom(extra_random)))
        raws.append(buf.getvalue())
    for raw in raws:
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        gz = gzip.compress(raw, compresslevel=1, mtime=0)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_write_blob(root, gz)})
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "strata test"} for _ in diff_ids],
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_write_blob(root, config)},
        "layers": layers,
    }).encode()
    mdesc = _write_blob(root, manifest)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **mdesc,
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return str(mdesc["digest"])
