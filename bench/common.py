"""Shared helpers for strata's benchmarks: timing, ratio tables, and the real peers to compare against.

The peers (a private dockerd 20.10, CNCF distribution registries, skopeo, podman) start through the
very code the test fixtures use (``tests/peers.py``), so a benchmark measures the same setup the
interop tests prove. Typical use in a ``bench/bench_<topic>.py`` module::

    from common import Comparison, peers_running, print_ratio_table, strata_cmd, time_command

    def main() -> int:
        with peers_running(dockerd=True) as p:
            assert p.dockerd is not None
            tar = p.busybox_tar()
            ours = time_command([*strata_cmd(p.strata_root), "import", str(tar), "bb:1"])
            theirs = time_command(p.dockerd.argv("import", str(tar), "bb:1"), env=p.dockerd.env)
        print_ratio_table("import a busybox rootfs", [Comparison("import", ours, theirs)])
        return 0
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _p in (REPO / "tests", REPO / "src"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from peers import (  # noqa: E402  (tests/ must be on sys.path first)
    DOCKER_BIN,
    Dockerd,
    PeerUnavailable,
    Podman,
    Registry,
    Skopeo,
    busybox_rootfs_tar,
    ensure_debs,
    make_busybox_rootfs,
    make_podman,
    make_skopeo,
    peer_tmpdir,
    start_dockerd,
    start_registry,
)

__all__ = [
    "DOCKER_BIN",
    "REPO",
    "Comparison",
    "Dockerd",
    "PeerUnavailable",
    "Peers",
    "Podman",
    "Registry",
    "Skopeo",
    "Timing",
    "busybox_rootfs_tar",
    "dir_size",
    "ensure_debs",
    "format_ratio_table",
    "make_busybox_rootfs",
    "make_podman",
    "make_skopeo",
    "peers_running",
    "print_ratio_table",
    "repeat_count",
    "save_results",
    "start_dockerd",
    "start_registry",
    "strata_cmd",
    "time_callable",
    "time_command",
]


# ---------------------------------------------------------------------------------------------
# timing


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs of one operation."""

    label: str
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the runs were."""
        return (max(self.runs) - min(self.runs)) / self.median if self.median else 0.0


def repeat_count(default: int = 5) -> int:
    """Runs per measurement: ``BENCH_N`` overrides; ``BENCH_QUICK=1`` makes it 1 (smoke run)."""
    if os.environ.get("BENCH_QUICK"):
        return 1
    return int(os.environ.get("BENCH_N", default))


def time_callable(
    label: str,
    fn: Callable[[], object],
    *,
    n: int | None = None,
    warmup: int = 1,
    setup: Callable[[], object] | None = None,
) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``n`` times timed; ``setup`` runs untimed before each."""
    timing = Timing(label)
    count = repeat_count() if n is None else n
    for i in range(warmup + count):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
        if i >= warmup:
            timing.runs.append(elapsed)
    return timing


def _run_checked(
    argv: Sequence[str], env: Mapping[str, str] | None, input: bytes | None, cwd: Path | None
) -> None:
    res = subprocess.run(list(argv), env=env, input=input, cwd=cwd, capture_output=True, check=False)
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"{' '.join(argv)} failed with {res.returncode}: {err}")


def time_command(
    argv: Sequence[str],
    *,
    label: str | None = None,
    n: int | None = None,
    warmup: int = 1,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    cwd: Path | None = None,
    setup: Callable[[], object] | None = None,
) -> Timing:
    """Median-able timings of a whole command (process start included); fails loudly on non-zero exit."""
    return time_callable(
        label or " ".join(argv[:3]),
        lambda: _run_checked(argv, env, input, cwd),
        n=n,
        warmup=warmup,
        setup=setup,
    )


# ---------------------------------------------------------------------------------------------
# reporting


@dataclass
class Comparison:
    """One row of a ratio table: strata's timing against a peer's for the same job."""

    label: str
    ours: Timing
    theirs: Timing
    peer: str = "docker"

    @property
    def ratio(self) -> float:
        """strata median / peer median (< 1 means strata is faster)."""
        return self.ours.median / self.theirs.median if self.theirs.median else float("inf")


def format_ratio_table(title: str, rows: Sequence[Comparison]) -> str:
    """A fixed-width table: job, strata median, peer median, ratio, runs."""
    head = f"{'job':<36} {'strata':>10} {'peer':>16} {'ratio':>7} {'runs':>5}"
    lines = [f"== {title}", head, "-" * len(head)]
    for r in rows:
        peer = f"{r.theirs.median * 1000:.1f}ms {r.peer}"
        lines.append(
            f"{r.label:<36} {r.ours.median * 1000:>8.1f}ms {peer:>16} {r.ratio:>6.2f}x {len(r.ours.runs):>5}"
        )
    return "\n".join(lines)


def print_ratio_table(title: str, rows: Sequence[Comparison]) -> None:
    print(format_ratio_table(title, rows), flush=True)


def save_results(name: str, rows: Sequence[Comparison], directory: Path | None = None) -> Path:
    """Write rows as JSON to ``bench/results/<name>.json`` (atomic); returns the path."""
    out_dir = directory or REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    data = [
        {**asdict(r), "ratio": r.ratio, "ours_median": r.ours.median, "theirs_median": r.theirs.median}
        for r in rows
    ]
    path = out_dir / f"{name}.json"
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path


def dir_size(path: Path) -> int:
    """Bytes allocated on disk below ``path`` (hard links counted once), like ``du -s``."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


# ---------------------------------------------------------------------------------------------
# strata and the peers


def strata_cmd(root: Path | None = None) -> list[str]:
    """argv prefix for the strata CLI of this checkout (``.venv/bin/strata``), with ``--root`` if given."""
    exe = REPO / ".venv" / "bin" / "strata"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "strata.cli.main"]
    return [*argv, "--root", str(root)] if root is not None else argv


@dataclass
class Peers:
    """What :func:`peers_running` started; every field is ``None`` when not requested."""

    workdir: Path
    dockerd: Dockerd | None = None
    registry: Registry | None = None
    registry_tls: Registry | None = None
    skopeo: Skopeo | None = None
    podman: Podman | None = None

    @property
    def strata_root(self) -> Path:
        """A fresh strata store root inside the work dir (created on first use)."""
        root = self.workdir / "strata-root"
        root.mkdir(exist_ok=True)
        return root

    def busybox_tar(self, name: str = "busybox.tar") -> Path:
        return busybox_rootfs_tar(self.workdir / name)


@contextlib.contextmanager
def peers_running(
    *,
    dockerd: bool = False,
    registry: bool = False,
    registry_tls: bool = False,
    skopeo: bool = False,
    podman: bool = False,
) -> Iterator[Peers]:
    """Start the requested peers (same code as the pytest fixtures), stop and remove all afterwards."""
    with contextlib.ExitStack() as stack:
        workdir = peer_tmpdir("sb")
        stack.callback(shutil.rmtree, workdir, True)
        p = Peers(workdir=workdir)
        if dockerd:
            p.dockerd = stack.enter_context(start_dockerd())
        if registry:
            p.registry = stack.enter_context(start_registry())
        if registry_tls:
            p.registry_tls = stack.enter_context(start_registry(tls=True, auth=True))
        if skopeo:
            p.skopeo = stack.enter_context(make_skopeo())
        if podman:
            p.podman = stack.enter_context(make_podman())
        yield p
