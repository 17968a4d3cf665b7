"""A cold (``--no-cache``) ``build`` of ``build_bench``'s multi-stage Dockerfile on the Debian base (and of
one whose steps are eight ``COPY --from`` a stage: the step alone) as an unprivileged user (rootless strata: overlay with userxattr) next to the same build as root, alternating
round by round; wall clock and CPU time of the waited process tree (``RUSAGE_CHILDREN``: the build, its
step containers' runc and their processes). ``BENCH_STRATA_BASELINE=/other/src`` adds that strata,
rootless on the same store, as one more peer: a before/after comparison in the same rounds.

Needs root (a throw-away user with subordinate ids, as ``rootless_bench``), uidmap and runc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_bench import BASE, MULTISTAGE  # type: ignore[import-not-found]
from common import REPO, Comparison, print_ratio_table, repeat_count, save_results  # type: ignore[import-not-found]
from debian_rootfs import debian_rootfs_tar  # type: ignore[import-not-found]
from rootless_bench import BenchUser, alternating, bench_user  # type: ignore[import-not-found]


def _with_src(argv: list[str], src: Path) -> list[str]:
    """A rootless command line of ``BenchUser.strata`` running the strata in ``src`` instead."""
    return [f"PYTHONPATH={src}:{a.split(':', 1)[1]}" if a.startswith("PYTHONPATH=") else a for a in argv]


# the step this bench watches, alone: COPY --from a stage, eight times (no RUN)
COPIES = f"FROM {BASE} AS src\nFROM {BASE}\n" + "".join(
    f"COPY --from=src /etc/os-release /f{i}\n" for i in range(8)
)


def _context(user: BenchUser, name: str, dockerfile: str) -> Path:
    ctx = user.home / name
    (ctx / "src").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for i in range(50):
        (ctx / "src" / f"{i}.txt").write_text(f"line {i}\n" * 20)
    for path in [ctx, *ctx.rglob("*")]:
        os.chown(path, user.uid, user.uid)
    return ctx


def main() -> int:
    if os.geteuid() != 0:
        print("rootless_build_bench: needs root (it creates a test user)", file=sys.stderr)
        return 1
    baseline = os.environ.get("BENCH_STRATA_BASELINE", "")
    base_tar = debian_rootfs_tar()
    with bench_user() as user, tempfile.TemporaryDirectory(prefix="strata-rlbuild-root-") as tmp:
        s = [sys.executable, "-m", "strata", "--root", str(Path(tmp) / "store")]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        shutil.copy(base_tar, user.home / "base.tar")
        os.chown(user.home / "base.tar", user.uid, user.uid)
        subprocess.run([*s, "import", str(base_tar), BASE], check=True, capture_output=True, env=env)
        subprocess.run(
            user.strata("import", "base.tar", BASE), check=True, capture_output=True, cwd=user.home
        )
        walls: list[Comparison] = []
        cpus: list[Comparison] = []
        for label, name, dockerfile in (("cold multi-stage build", "multi", MULTISTAGE),
                                        ("cold build, 8 x COPY --from", "copies", COPIES)):  # fmt: skip
            ctx = _context(user, name, dockerfile)
            cold = ("build", "-q", "--no-cache", "--network", "none", "-t", f"rl{name}:1", str(ctx))
            cmds = {
                "rootless": (user.strata(*cold), None, user.home),
                "root": ([*s, *cold], env, None),
            }
            if baseline:
                cmds["rootless-before"] = (_with_src(user.strata(*cold), Path(baseline)), None, user.home)
            got = alternating(cmds, repeat_count(5))  # type: ignore[arg-type]
            for rows, at in ((walls, 0), (cpus, 1)):
                rows.append(Comparison(label, got["rootless"][at], got["root"][at], peer="strata-root"))
                if baseline:
                    rows.append(
                        Comparison(
                            label, got["rootless"][at], got["rootless-before"][at], peer="rootless-before"
                        )
                    )
        print_ratio_table(
            "rootless strata build, wall clock, alternating runs (ratio < 1: rootless faster)", walls
        )
        print_ratio_table("the same runs, CPU time of the waited process tree (user+sys)", cpus)
        save_results("rootless-build", walls)
        save_results("rootless-build-cpu", cpus)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
