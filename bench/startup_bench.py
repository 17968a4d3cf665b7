"""Start-up of read-only commands, strata next to the Docker CLI (which asks its daemon), as ratios.

Each command is timed as a whole process (interpreter start included) against a private dockerd
holding the same busybox image and one created container: ``images``, ``ps -a``, ``inspect IMAGE``, ``history IMAGE`` and
``--version``. The goal (issue 12) is every strata command within 2x of ``docker images``, so the
table has two ratios: against the same Docker command, and against ``docker images``.

Runs alternate (strata, docker, strata, docker, ...) so a busy machine slows both alike, ``BENCH_INNER``
(3) times a side per case in each of ``BENCH_N`` rounds; each round's ratio is of its medians, so one run
that met a burst of load does not decide a round (the single-run ratios are printed too); strata's
modules are byte-compiled first, as an installed package is. On a loaded machine the wall times swing
widely, so two steadier figures follow the tables: the best run of each, and the CPU time (user +
system) each strata command spent, next to a bare ``python -c pass`` (the floor no Python CLI can beat).

With ``BENCH_CALLGRIND=1`` (and valgrind installed) each strata command's instruction count follows, from
one run under ``valgrind --tool=callgrind``: a figure other load on the machine cannot move, next to the
interpreter's own start (``python -S -c pass``).
"""

from __future__ import annotations

import compileall
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
SRC = Path(os.environ.get("BENCH_STRATA_SRC") or REPO / "src")  # another checkout's src/ to time that one


def strata_argv(root: Path) -> tuple[list[str], dict[str, str]]:
    """The CLI of this checkout as the console script (scripts/entry_script.py) runs it, and its
    environment: without ``site``, the directories it would add named in the script."""
    sys.path.insert(0, str(REPO / "scripts"))
    from entry_script import site_paths  # type: ignore[import-not-found]

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    code = f"import sys\nsys.path.extend({site_paths()!r})\nfrom strata.cli.main import run\nrun()"
    return [sys.executable, "-S", "-c", code, "--root", str(root)], env


CPU: dict[str, list[float]] = {}  # label -> CPU seconds (user + system) of each timed run


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _once(argv: list[str], env: dict[str, str], cpu_label: str = "") -> float:
    c0, t0 = _cpu(), time.perf_counter()
    res = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if cpu_label:
        CPU.setdefault(cpu_label, []).append(_cpu() - c0)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with {res.returncode}: {res.stderr.decode(errors='replace')}")
    return elapsed


Argv = tuple[list[str], dict[str, str]]


INNER = int(os.environ.get("BENCH_INNER", "3"))  # alternating runs of each side of each case per round


def alternate(cases: list[tuple[str, Argv, Argv]], n: int, inner: int = 1) -> list[Comparison]:
    """``n`` rounds of ``inner`` timed runs of each side of each case after one untimed warm-up of each:
    round after round, every case ``inner`` times per round (strata, then docker), so a burst of load
    elsewhere hits every command and both sides alike instead of one command's whole series."""
    timings = [(Timing(f"strata {label}"), Timing(f"docker {label}")) for label, _, _ in cases]
    for _, ours, theirs in cases:
        _once(*ours)
        _once(*theirs)
    for _ in range(n):
        for (label, ours, theirs), (a, b) in zip(cases, timings, strict=True):
            for _ in range(inner):
                a.runs.append(_once(*ours, cpu_label=label))
                b.runs.append(_once(*theirs))
    return [Comparison(label, a, b) for (label, _, _), (a, b) in zip(cases, timings, strict=True)]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def round_ratios(ours: list[float], theirs: list[float], inner: int) -> list[float]:
    """Each round's ratio: the median of its ``inner`` runs of one side over the other's."""
    return [statistics.median(ours[i:i + inner]) / statistics.median(theirs[i:i + inner])
            for i in range(0, len(ours), inner)]


def paired_spread(rows: list[Comparison], baseline: Timing, inner: int = 1) -> list[str]:
    """Per round, each strata command against the ``docker images`` runs of the same round (they ran
    seconds apart, so they met the same load; with ``inner`` runs a side, their medians): the median ratio,
    its middle half, its range, and in how many rounds the goal held."""
    lines = []
    for r in rows:
        ratios = round_ratios(r.ours.runs, baseline.runs, inner)
        held = sum(1 for x in ratios if x <= GOAL)
        lines.append(f"{r.label:<16} median {statistics.median(ratios):.2f}x  middle half "
                     f"{_quantile(ratios, 0.25):.2f}-{_quantile(ratios, 0.75):.2f}x  range {min(ratios):.2f}-"
                     f"{max(ratios):.2f}x  <= {GOAL:g}x in {held}/{len(ratios)} rounds")
    return lines


def _floor(n: int) -> tuple[float, float]:
    """Best wall time and median CPU time of a bare interpreter (``python -c pass``)."""
    runs = [_once([sys.executable, "-c", "pass"], dict(os.environ), cpu_label="python -c pass") for _ in range(n)]
    return min(runs), statistics.median(CPU["python -c pass"])


def main() -> int:
    compileall.compile_dir(str(SRC / "strata"), quiet=1)
    n = repeat_count(21)
    with peers_running(dockerd=True) as p:
        assert p.dockerd is not None
        docker = p.dockerd
        tar = p.busybox_tar()
        s_argv, s_env = strata_argv(p.strata_root)
        subprocess.run([*s_argv, "import", "-c", 'CMD ["/bin/sh"]', str(tar), IMAGE], env=s_env, check=True,
                       capture_output=True)
        docker.run("import", "-c", 'CMD ["/bin/sh"]', str(tar), IMAGE)
        # one container on each side, so ps -a lists a row (created, never started: no runtime involved)
        subprocess.run([*s_argv, "create", "--name", "bench-created", IMAGE], env=s_env, check=True,
                       capture_output=True)
        docker.run("create", "--name", "bench-created", IMAGE)
        try:
            _measure(s_argv, s_env, docker, n)
        finally:  # the created container holds a mounted rootfs: removed before the store is
            subprocess.run([*s_argv, "rm", "-f", "bench-created"], env=s_env, capture_output=True, check=False)
    return 0


def instructions(argv: list[str], env: dict[str, str]) -> int:
    """Instructions one run of ``argv`` executes (callgrind's total), the child processes' included."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv], env=env,
                       capture_output=True, check=True)
        with open(out) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
    raise RuntimeError("callgrind wrote no total")


def _instruction_table(s_argv: list[str], s_env: dict[str, str]) -> None:
    floor = instructions([sys.executable, "-S", "-c", "pass"], dict(os.environ))
    print("== instructions (callgrind, one run each; load-independent)")
    print(f"python -S -c pass {floor / 1e6:8.1f}M")
    for args in COMMANDS:
        count = instructions([*s_argv, *args], s_env)
        label = " ".join(args).replace(IMAGE, "IMAGE")
        print(f"strata {label:<15} {count / 1e6:8.1f}M  ({(count - floor) / 1e6:.1f}M beyond the interpreter)")


def _measure(s_argv: list[str], s_env: dict[str, str], docker: Any, n: int) -> None:
    cases = [(" ".join(args).replace(IMAGE, "IMAGE"), ([*s_argv, *args], s_env), (docker.argv(*args), docker.env))
             for args in COMMANDS]
    rows = alternate(cases, n, INNER)
    baseline = rows[0].theirs  # docker images
    goal_rows = [Comparison(f"{r.label} vs docker images", r.ours, baseline) for r in rows]
    print_ratio_table("start-up: strata vs the same docker command", rows)
    print_ratio_table(f"start-up: strata vs docker images (goal <= {GOAL:g}x)", goal_rows)
    best = baseline.best
    print("best runs (the least disturbed by other load): docker images "
          f"{best * 1000:.1f}ms; " + ", ".join(f"{r.label} {r.ours.best * 1000:.1f}ms ({r.ours.best / best:.2f}x)"
                                                for r in rows))
    print(f"== per round ({INNER} runs a side, their medians), vs that round's docker images (goal <= {GOAL:g}x)")
    print("\n".join(paired_spread(rows, baseline, INNER)))
    if INNER > 1:
        print("== per single run, vs the docker images run next to it")
        print("\n".join(paired_spread(rows, baseline)))
    floor_wall, floor_cpu = _floor(n * INNER)
    print(f"python -c pass: best {floor_wall * 1000:.1f}ms, cpu {floor_cpu * 1000:.1f}ms; strata cpu (median): "
          + ", ".join(f"{r.label} {statistics.median(CPU[r.label]) * 1000:.1f}ms" for r in rows))
    save_results("startup", rows + goal_rows)
    missed = [r.label for r in goal_rows if r.ratio > GOAL]
    if missed:
        print(f"over the {GOAL:g}x goal: {', '.join(missed)}")
    if os.environ.get("BENCH_CALLGRIND"):
        _instruction_table(s_argv, s_env)


if __name__ == "__main__":
    raise SystemExit(main())
