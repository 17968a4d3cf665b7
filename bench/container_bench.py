"""Containers, strata next to Docker 20.10, as ratios:

- ``run --rm IMAGE true`` latency (whole command, process start included; Docker goes through its daemon);
- ``commit`` of a container that wrote 5,000 small files and one 100 MB file.

Both engines run the same busybox image (imported from the same tarball) with ``--network none``.
"""

from __future__ import annotations

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

IMAGE = "bench/busybox:1"
WRITER = (
    "mkdir -p /data && cd /data && i=0; while [ $i -lt 5000 ]; do echo file-$i > f$i; i=$((i+1)); done; "
    "dd if=/dev/urandom of=/big bs=1M count=100 2>/dev/null"
)


def _quiet(argv: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, env=env, capture_output=True, check=False)


def main() -> int:
    with peers_running(dockerd=True) as p:
        assert p.dockerd is not None
        docker = p.dockerd
        s = strata_cmd(p.strata_root)
        tar = p.busybox_tar()
        subprocess.run([*s, "import", "-c", 'CMD ["/bin/sh"]', str(tar), IMAGE], check=True, capture_output=True)
        docker.run("import", "-c", 'CMD ["/bin/sh"]', str(tar), IMAGE)
        rows = []

        ours = time_command([*s, "run", "--rm", "--network", "none", IMAGE, "true"], label="strata run --rm")
        theirs = time_command(
            docker.argv("run", "--rm", "--network", "none", IMAGE, "true"), label="docker run --rm", env=docker.env
        )
        rows.append(Comparison("run --rm IMAGE true", ours, theirs))

        # commit: each timed run commits a fresh container that wrote the same files
        def prepare_strata() -> None:
            _quiet([*s, "rm", "-f", "writer"])
            _quiet([*s, "rmi", "bench/committed:1"])
            subprocess.run([*s, "run", "--network", "none", "--name", "writer", IMAGE, "sh", "-c", WRITER],
                           check=True, capture_output=True)

        def prepare_docker() -> None:
            _quiet(docker.argv("rm", "-f", "writer"), docker.env)
            _quiet(docker.argv("rmi", "bench/committed:1"), docker.env)
            docker.run("run", "--network", "none", "--name", "writer", IMAGE, "sh", "-c", WRITER)

        ours = time_command([*s, "commit", "writer", "bench/committed:1"], label="strata commit",
                            setup=prepare_strata)
        theirs = time_command(docker.argv("commit", "writer", "bench/committed:1"), label="docker commit",
                              setup=prepare_docker, env=docker.env)
        rows.append(Comparison("commit (5000 files + 100 MB)", ours, theirs))
        _quiet([*s, "rm", "-f", "writer"])
        print_ratio_table("containers: strata vs docker (ratio < 1: strata faster)", rows)
        save_results("containers", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
