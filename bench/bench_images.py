"""import, save and load of a ~200 MB Debian rootfs image: strata next to Docker 20.10, as ratios."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # type: ignore[import-not-found]
    Comparison,
    peers_running,
    print_ratio_table,
    save_results,
    strata_cmd,
    time_command,
)
from debian_rootfs import debian_rootfs_tar  # type: ignore[import-not-found]


def main() -> int:
    rootfs = debian_rootfs_tar()
    print(f"rootfs: {rootfs} ({rootfs.stat().st_size / 1e6:.0f} MB)")
    with peers_running(dockerd=True) as p:
        assert p.dockerd is not None
        docker = p.dockerd
        root = p.strata_root
        s = strata_cmd(root)

        def reset_strata() -> None:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()

        def reset_docker() -> None:
            subprocess.run(docker.argv("rmi", "-f", "bench/deb:1"), capture_output=True, check=False, env=docker.env)

        rows = []
        ours = time_command([*s, "import", str(rootfs), "bench/deb:1"], label="strata import", setup=reset_strata)
        theirs = time_command(docker.argv("import", str(rootfs), "bench/deb:1"), label="docker import", setup=reset_docker, env=docker.env)
        rows.append(Comparison("import", ours, theirs))

        out_s = p.workdir / "s.tar"
        out_d = p.workdir / "d.tar"
        ours = time_command([*s, "save", "-o", str(out_s), "bench/deb:1"], label="strata save")
        theirs = time_command(docker.argv("save", "-o", str(out_d), "bench/deb:1"), label="docker save", env=docker.env)
        rows.append(Comparison("save", ours, theirs))

        ours = time_command([*s, "load", "-i", str(out_s)], label="strata load", setup=reset_strata)
        theirs = time_command(docker.argv("load", "-i", str(out_d)), label="docker load", setup=reset_docker, env=docker.env)
        rows.append(Comparison("load", ours, theirs))
        print_ratio_table("images: strata vs docker (ratio < 1: strata faster)", rows)
        save_results("images", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
