"""A ~200 MB Debian rootfs tarball (debootstrap --variant=minbase), built once and cached."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

CACHE = Path(os.environ.get("STRATA_BENCH_CACHE", "/var/tmp/strata-bench"))


def debian_rootfs_tar(min_bytes: int = 150_000_000) -> Path:
    """The cached tarball, building it with debootstrap when missing (falls back to padding a minbase
    tree with /usr/share/doc-like filler only if debootstrap cannot reach Debian's archive)."""
    out = CACHE / "debian-minbase.tar"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    if shutil.which("debootstrap") is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        import peers

        peers.ensure_debs("debootstrap")
    target = CACHE / "rootfs"
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(target), "http://deb.debian.org/debian"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    size = sum(p.lstat().st_size for p in target.rglob("*") if p.is_file() and not p.is_symlink())
    if size < min_bytes:
        # minbase is ~120-200 MB; pad with incompressible-ish data to reach the benchmark's size
        filler = target / "opt" / "filler"
        filler.mkdir(parents=True, exist_ok=True)
        for i in range((min_bytes - size) // 10_000_000 + 1):
            (filler / f"blob{i}").write_bytes(os.urandom(10_000_000))
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(target, arcname=".")
    os.replace(tmp, out)
    shutil.rmtree(target, ignore_errors=True)
    return out


if __name__ == "__main__":
    print(debian_rootfs_tar())
