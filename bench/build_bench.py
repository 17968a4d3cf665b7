"""``build``: a multi-stage Dockerfile on the Debian base, cold (``--no-cache``) and fully cached,
and a 200 MB context, ``strata build`` next to ``docker build`` (classic builder and BuildKit),
as ratios. ``buildah bud`` is not measured: Debian's buildah is not among the installed peers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # type: ignore[import-not-found]
    Comparison,
    peers_running,
    print_ratio_table,
    save_results,
    time_command,
)
from debian_rootfs import debian_rootfs_tar  # type: ignore[import-not-found]

BASE = "bench/debian:base"
MULTISTAGE = f"""FROM {BASE} AS build
RUN mkdir -p /out && for i in $(seq 1 200); do echo "file $i" > /out/f$i; done
WORKDIR /src
COPY src/ ./
RUN cat /src/*.txt | wc -l > /out/lines

FROM {BASE} AS tools
RUN echo tools > /tools

FROM {BASE}
ENV APP=/app
COPY --from=build /out $APP/
COPY --from=tools /tools /tools
LABEL bench=build
CMD ["cat", "/app/lines"]
"""


def _contexts(workdir: Path) -> tuple[Path, Path]:
    multi = workdir / "multi"
    (multi / "src").mkdir(parents=True)
    (multi / "Dockerfile").write_text(MULTISTAGE)
    for i in range(50):
        (multi / "src" / f"{i}.txt").write_text(f"line {i}\n" * 20)
    big = workdir / "big"
    big.mkdir()
    (big / "Dockerfile").write_text(f"FROM {BASE}\nCOPY data /data\n")
    (big / "data").mkdir()
    for i in range(20):  # 200 MB in 20 files of 10 MB
        with open(big / "data" / f"blob{i}", "wb") as f:
            f.write(os.urandom(10 << 20))
    return multi, big


def main() -> int:
    rootfs = debian_rootfs_tar()
    with peers_running(dockerd=True) as p:
        assert p.dockerd is not None
        docker = p.dockerd
        # common.strata_cmd falls back to `python -m strata.cli.main`, which runs nothing: use the package
        s = [sys.executable, "-m", "strata", "--root", str(p.strata_root)]
        # as installed: bytecode cached (this machine's environment turns it off for everything)
        strata_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([*s, "import", str(rootfs), BASE], check=True, capture_output=True)
        docker.run("import", str(rootfs), BASE)
        multi, big = _contexts(p.workdir)
        classic = dict(docker.env, DOCKER_BUILDKIT="0")
        buildkit = dict(docker.env, DOCKER_BUILDKIT="1")
        rows = []
        for label, ctx, extra in (("multi-stage, cold", multi, ["--no-cache"]), ("multi-stage, cached", multi, []),
                                  ("200 MB context, cold", big, ["--no-cache"])):  # fmt: skip
            ours = time_command(env=strata_env, argv=[*s, "build", "-q", "--network", "none", *extra, "-t", "bench/out:1", str(ctx)], label=f"strata {label}")
            for peer, env in (("docker classic", classic), ("docker buildkit", buildkit)):
                argv = docker.argv("build", "-q", "--network", "none", *extra, "-t", "bench/out:1", str(ctx))
                theirs = time_command(argv, label=f"{peer} {label}", env=env)
                rows.append(Comparison(label, ours, theirs, peer=peer))
        print_ratio_table("build: strata vs docker (ratio < 1: strata faster)", rows)
        save_results("build", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
