"""``build``: a multi-stage Dockerfile on the Debian base and a 200 MB context, cold (``--no-cache``) and
fully cached, ``strata build`` next to ``docker build`` (the classic builder; BuildKit when the docker
CLI can reach it) and ``buildah bud`` (Debian's buildah: overlay storage in a private root, chroot
isolation, ``--layers`` for its cache). The tools alternate within each round, so load from the rest
of the machine falls on all of them alike; median and spread over ``BENCH_N`` rounds (default 5).
``BENCH_BUILD_CASES`` (comma-separated: ``multi``, ``big``; default both) and ``BENCH_BUILD_KINDS``
(``cold``, ``cached``; default both) narrow a run, e.g. to the cached multi-stage rebuild alone. ``BENCH_STRATA_BASELINE=/other/src`` adds
that strata as one more peer (the same store), for a before/after comparison in the same rounds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # type: ignore[import-not-found]
    Comparison,
    Timing,
    peers_running,
    print_ratio_table,
    repeat_count,
    save_results,
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

Tool = Callable[[Path, list[str]], list[str]]


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


def _buildah(workdir: Path, rootfs: Path) -> list[str] | None:
    """buildah's argv prefix on a private store holding the base image, or None when it cannot run."""
    if shutil.which("buildah") is None:
        return None
    b = ["buildah", "--root", str(workdir / "buildah-root"), "--runroot", str(workdir / "buildah-run"),
         "--storage-driver", "overlay"]  # fmt: skip
    try:
        cid = subprocess.run([*b, "from", "scratch"], check=True, capture_output=True, text=True).stdout.split()[-1]
        subprocess.run([*b, "add", cid, str(rootfs), "/"], check=True, capture_output=True)
        subprocess.run([*b, "commit", "-q", cid, BASE], check=True, capture_output=True)
        subprocess.run([*b, "rm", cid], check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        print(f"buildah cannot run here: {e.stderr}", flush=True)
        return None
    return b


def _run(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {res.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def main() -> int:
    rootfs = debian_rootfs_tar()
    with peers_running(dockerd=True) as p:
        assert p.dockerd is not None
        docker = p.dockerd
        s = [sys.executable, "-m", "strata", "--root", str(p.strata_root)]
        # as installed: bytecode cached (this machine's environment turns it off for everything)
        strata_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([*s, "import", str(rootfs), BASE], check=True, capture_output=True)
        docker.run("import", str(rootfs), BASE)
        buildah = _buildah(p.workdir, rootfs)
        multi, big = _contexts(p.workdir)
        tools: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "strata": ([*s, "build", "-q", "--network", "none", "-t", "bench/out:1"], strata_env),
            "docker classic": (docker.argv("build", "-q", "--network", "none", "-t", "bench/out:1"),
                               dict(docker.env, DOCKER_BUILDKIT="0")),
            "docker buildkit": (docker.argv("build", "-q", "--network", "none", "-t", "bench/out:1"),
                                dict(docker.env, DOCKER_BUILDKIT="1")),
        }  # fmt: skip
        baseline = os.environ.get("BENCH_STRATA_BASELINE")  # another strata's src/: before/after, alternating
        if baseline:
            tools["strata baseline"] = (tools["strata"][0], dict(strata_env, PYTHONPATH=baseline))
        if buildah is not None:
            tools["buildah"] = ([*buildah, "bud", "-q", "--isolation", "chroot", "--layers", "-t", "bench/out:1"], None)
        cases = {"multi": ("multi-stage", multi), "big": ("200 MB context", big)}
        wanted = os.environ.get("BENCH_BUILD_CASES", "multi,big").split(",")
        rows = _measure(tools, [cases[c.strip()] for c in wanted if c.strip()])
        print_ratio_table("build: strata vs peers (ratio < 1: strata faster)", rows)
        save_results("build", rows)
    return 0


def _measure(tools: dict[str, tuple[list[str], dict[str, str] | None]], cases: list[tuple[str, Path]]) -> list[Comparison]:
    """Per case: a cold and a cached timing of every tool, the tools alternating in each round."""
    unavailable: set[str] = set()
    timings: dict[tuple[str, str], Timing] = {}
    for case, ctx in cases:
        kinds = os.environ.get("BENCH_BUILD_KINDS", "cold,cached").split(",")
        for kind, extra in (k for k in (("cold", ["--no-cache"]), ("cached", [])) if k[0] in kinds):
            label = f"{case}, {kind}"
            for rnd in range(repeat_count() + 1):  # round 0: warm-up (and the cache's first fill)
                for tool, (argv, env) in tools.items():
                    if tool in unavailable:
                        continue
                    try:
                        elapsed = _run([*argv, *extra, str(ctx)], env)
                    except RuntimeError as e:
                        print(f"{tool} unavailable: {e}", flush=True)
                        unavailable.add(tool)
                        continue
                    if rnd:
                        timings.setdefault((label, tool), Timing(f"{tool} {label}")).runs.append(elapsed)
    rows = []
    for (label, tool), t in timings.items():
        if tool != "strata" and (label, "strata") in timings:
            rows.append(Comparison(label, timings[(label, "strata")], t, peer=tool))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
