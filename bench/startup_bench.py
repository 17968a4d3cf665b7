"""Start-up of read-only commands, strata next to the Docker CLI (which asks its daemon), as ratios.

Each command is timed as a whole process (interpreter start included) against a private dockerd
holding the same busybox image: ``images``, ``ps -a``, ``inspect IMAGE``, ``history IMAGE`` and
``--version``. The goal (issue 12) is every strata command within 2x of ``docker images``, so the
table has two ratios: against the same Docker command, and against ``docker images``.

Runs alternate (strata, docker, strata, docker, ...) so a busy machine slows both alike; strata's
modules are byte-compiled first, as an installed package is.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # type: ignore[import-not-found]
    REPO,
    Comparison,
    Timing,
    peers_running,
    print_ratio_table,
    repeat_count,
    save_results,
)

IMAGE = "bench/busybox:1"
COMMANDS = (["images"], ["ps", "-a"], ["inspect", IMAGE], ["history", IMAGE], ["--version"])
GOAL = 2.0  # each strata command within 2x `docker images`


def strata_argv(root: Path) -> tuple[list[str], dict[str, str]]:
    """The CLI of this checkout as the console script runs it, and its environment."""
    src = REPO / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    code = "import sys\nfrom strata.cli.main import main\nsys.exit(main())"
    return [sys.executable, "-c", code, "--root", str(root)], env


def _once(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with {res.returncode}: {res.stderr.decode(errors='replace')}")
    return elapsed


def alternate(label: str, ours: tuple[list[str], dict[str, str]], theirs: tuple[list[str], dict[str, str]],
              n: int) -> tuple[Timing, Timing]:
    """``n`` timed runs of each side, interleaved, after one untimed warm-up of each."""
    a, b = Timing(f"strata {label}"), Timing(f"docker {label}")
    _once(*ours)
    _once(*theirs)
    for _ in range(n):
        a.runs.append(_once(*ours))
        b.runs.append(_once(*theirs))
    return a, b


def main() -> int:
    compileall.compile_dir(str(REPO / "src" / "strata"), quiet=1)
    n = repeat_count(11)
    with peers_running(dockerd=True) as p:
        assert p.dockerd is not None
        docker = p.dockerd
        tar = p.busybox_tar()
        s_argv, s_env = strata_argv(p.strata_root)
        subprocess.run([*s_argv, "import", "-c", 'CMD ["/bin/sh"]', str(tar), IMAGE], env=s_env, check=True,
                       capture_output=True)
        docker.run("import", "-c", 'CMD ["/bin/sh"]', str(tar), IMAGE)
        rows: list[Comparison] = []
        for args in COMMANDS:
            label = " ".join(args).replace(IMAGE, "IMAGE")
            ours, theirs = alternate(label, ([*s_argv, *args], s_env), (docker.argv(*args), docker.env), n)
            rows.append(Comparison(label, ours, theirs))
        baseline = rows[0].theirs  # docker images
        goal_rows = [Comparison(f"{r.label} vs docker images", r.ours, baseline) for r in rows]
        print_ratio_table("start-up: strata vs the same docker command", rows)
        print_ratio_table(f"start-up: strata vs docker images (goal <= {GOAL:g}x)", goal_rows)
        best = baseline.best
        print("best runs (the least disturbed by other load): docker images "
              f"{best * 1000:.1f}ms; " + ", ".join(f"{r.label} {r.ours.best * 1000:.1f}ms ({r.ours.best / best:.2f}x)"
                                                    for r in rows))
        save_results("startup", rows + goal_rows)
        missed = [r.label for r in goal_rows if r.ratio > GOAL]
        if missed:
            print(f"over the {GOAL:g}x goal: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
