"""pull and push of a ~300 MB, 2-layer image against one local distribution registry.

strata pull (into an empty store) next to docker pull (image removed first) and skopeo copy (to a
fresh ``dir:``); strata push next to docker push, each into a freshly wiped registry (same port) so
every blob is really uploaded. Prints ratios (strata median / peer median; below 1: strata faster).
"""

from __future__ import annotations

import functools
import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

from common import (  # type: ignore[import-not-found]  # noqa: E402
    Comparison,
    peers_running,
    print_ratio_table,
    repeat_count,
    save_results,
    strata_cmd,
    time_command,
)

from peers import REGISTRY_BIN, Registry, make_busybox_rootfs  # type: ignore[import-not-found]  # noqa: E402

CACHE = Path(os.environ.get("STRATA_BENCH_CACHE", "/var/tmp/strata-bench")) / "pullpush"
MB = 1_000_000


def _fill(directory: Path, total: int, seed: int) -> None:
    """Files of half-random, half-text data (gzip gets them to ~55%)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = (f"strata bench line {seed} " * 40 + "\n").encode()
    i = 0
    written = 0
    while written < total:
        chunk = os.urandom(5 * MB) + text * (5 * MB // len(text))
        (directory / f"f{seed}-{i:04d}.bin").write_bytes(chunk)
        written += len(chunk)
        i += 1


def _layer_tar(name: str, build: object) -> Path:
    out = CACHE / f"{name}.tar"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    tree = CACHE / f"{name}-tree"
    shutil.rmtree(tree, ignore_errors=True)
    build(tree)  # type: ignore[operator]
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(tree.rglob("*")):
            tar.add(p, arcname=p.relative_to(tree).as_posix(), recursive=False)
    os.replace(tmp, out)
    shutil.rmtree(tree, ignore_errors=True)
    return out


def _base(tree: Path) -> None:
    make_busybox_rootfs(tree)
    _fill(tree / "opt" / "base", 200 * MB, 1)


def _top(tree: Path) -> None:
    _fill(tree / "opt" / "app", 100 * MB, 2)


def _gzip(tar: Path) -> Path:
    out = tar.with_suffix(".tar.gz")
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        with open(tar, "rb") as src, gzip.GzipFile(tmp, "wb", compresslevel=1, mtime=0) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, out)
    return out


def _store_image(root: Path, name: str) -> None:
    """Put the 2-layer image into a strata store directly (gzip blobs, as pulled images are)."""
    from strata.copier import copy_image
    from strata.digest import digest_file
    from strata.engine import Engine
    from strata.image import mediatypes as mt
    from strata.image.api import BlobLayer, SimpleImage
    from strata.image.spec import Descriptor, ImageConfig
    from strata.reference import parse_normalized_named
    from strata.transports.store import StoreSink

    layers = []
    diff_ids = []
    for tar in (_layer_tar("base", _base), _layer_tar("top", _top)):
        gz = _gzip(tar)
        diff_id, _ = digest_file(str(tar))
        blob, size = digest_file(str(gz))
        layers.append(BlobLayer(Descriptor(mt.DOCKER_LAYER, blob, size), functools.partial(gz.open, "rb"), diff_id))
        diff_ids.append(str(diff_id))
    config = ImageConfig.from_dict(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(2)],
        }
    )
    engine = Engine.open(root)
    try:
        copy_image(SimpleImage(config, layers), StoreSink(engine), [parse_normalized_named(name)])
    finally:
        engine.close()


def _wipe_registry(reg: Registry) -> None:
    """Restart the registry on the same port with empty storage."""
    reg.process.terminate()
    reg.process.wait(10)
    shutil.rmtree(reg.storage, ignore_errors=True)
    with reg.log_path.open("ab") as log:
        reg.process = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(reg.root / "config.yml")], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{reg.url}/v2/", timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("registry did not come back")


def main() -> int:
    n = repeat_count(3)
    with peers_running(dockerd=True, registry=True, skopeo=True) as p:
        assert p.dockerd and p.registry and p.skopeo
        docker, reg = p.dockerd, p.registry
        src_root = p.workdir / "strata-src"
        name = f"{reg.host}/bench/big:1"
        t0 = time.monotonic()
        _store_image(src_root, name)
        print(f"image ready in {time.monotonic() - t0:.1f}s "
              f"(layers {sum(f.stat().st_size for f in CACHE.glob('*.tar.gz')) / MB:.0f} MB gzip, "
              f"{sum(f.stat().st_size for f in CACHE.glob('*.tar')) / MB:.0f} MB tar)", flush=True)  # fmt: skip
        push_src = strata_cmd(src_root)
        subprocess.run([*push_src, "push", name], check=True, capture_output=True)
        subprocess.run(docker.argv("pull", name), check=True, capture_output=True, env=docker.env)

        rows = []
        # ---- pull: into an empty store each time
        pull_root = p.workdir / "strata-pull"

        def reset_strata() -> None:
            shutil.rmtree(pull_root, ignore_errors=True)

        def reset_docker() -> None:
            subprocess.run(docker.argv("rmi", "-f", name), capture_output=True, check=False, env=docker.env)
            subprocess.run(docker.argv("image", "prune", "-af"), capture_output=True, check=False, env=docker.env)

        dest = p.workdir / "skopeo-dir"

        def reset_skopeo() -> None:
            shutil.rmtree(dest, ignore_errors=True)

        ours = time_command([*strata_cmd(pull_root), "pull", name], label="strata pull", n=n, setup=reset_strata)
        theirs = time_command(docker.argv("pull", name), label="docker pull", n=n, env=docker.env, setup=reset_docker)
        rows.append(Comparison("pull ~300MB 2 layers", ours, theirs, "docker"))
        sk = time_command(
            [*p.skopeo.base_argv, "copy", "--src-tls-verify=false", f"docker://{name}", f"dir:{dest}"],
            label="skopeo copy", n=n, env=p.skopeo.env, setup=reset_skopeo,
        )  # fmt: skip
        rows.append(Comparison("pull ~300MB 2 layers", ours, sk, "skopeo"))

        # ---- push: into a wiped registry each time (every blob uploaded)
        subprocess.run(docker.argv("pull", name), check=True, capture_output=True, env=docker.env)
        ours = time_command([*push_src, "push", name], label="strata push", n=n, setup=lambda: _wipe_registry(reg))
        theirs = time_command(
            docker.argv("push", name), label="docker push", n=n, env=docker.env, setup=lambda: _wipe_registry(reg)
        )
        rows.append(Comparison("push ~300MB 2 layers", ours, theirs, "docker"))
        print_ratio_table("pull/push: strata vs peers (ratio < 1: strata faster)", rows)
        save_results("pull_push", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
