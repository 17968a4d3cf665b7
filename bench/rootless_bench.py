"""``run --rm IMAGE true`` as an unprivileged user (rootless strata: a user namespace joined through
the pause process, overlay with userxattr, pasta for the default network) next to rootful strata and
next to rootless ``podman run`` with runc (Debian's podman 4.3; cgroupfs manager: this host has no
delegated cgroup v2, so neither applies limits). Each with ``--network none`` and on the default network
(strata: pasta; podman 4.3: slirp4netns). The three commands alternate, round by round (a load change on
the shared machine hits all alike), and each run's CPU time (user + system of the waited process tree, from
``RUSAGE_CHILDREN``) is reported next to its wall clock; helpers that detach (pasta, slirp4netns, podman's
conmon and the runc it starts) are not in the CPU figures, so podman's is a lower bound.

Needs root (it creates a throw-away user with subordinate ids, bind-mounts this interpreter read-only
for it, and removes both afterwards), busybox-static, uidmap, passt and podman.
"""

from __future__ import annotations

import io
import os
import pwd
import resource
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # type: ignore[import-not-found]
    REPO,
    Comparison,
    Timing,
    print_ratio_table,
    repeat_count,
    save_results,
)

APPLETS = ("sh", "true")


def busybox_tar(path: Path) -> None:
    data = Path("/bin/busybox").read_bytes()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("bin")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    path.chmod(0o644)


class BenchUser:
    """A throw-away user with subordinate ids; commands run as it through runuser with a clean env."""

    def __init__(self, base: Path) -> None:
        self.name = f"strb{uuid.uuid4().hex[:8]}"
        self.home = base / self.name
        subprocess.run(["useradd", "-m", "-d", str(self.home), "-s", "/bin/sh", "-K", "SUB_UID_COUNT=65536",
                        "-K", "SUB_GID_COUNT=65536", self.name], check=True)  # fmt: skip
        self.uid = pwd.getpwnam(self.name).pw_uid
        self.python = base / "python" / Path(os.path.realpath(sys.executable)).relative_to(
            Path(sys.base_prefix).resolve()
        )
        self.xdg = base / f"xdg-{self.uid}"
        self.xdg.mkdir(mode=0o700)
        os.chown(self.xdg, self.uid, self.uid)

    def env(self) -> list[str]:
        site = sysconfig.get_paths()["purelib"]
        return [f"HOME={self.home}", f"USER={self.name}", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                f"PYTHONPATH={REPO / 'src'}:{site}", f"LD_LIBRARY_PATH={self.python.parents[1] / 'lib'}",
                f"XDG_DATA_HOME={self.home / '.local/share'}", "LC_ALL=C.UTF-8"]  # fmt: skip

    def strata(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.name, "--", "env", "-i", *self.env(), str(self.python), "-m", "strata", *args]

    def podman(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.name, "--", "env", "-i", *self.env(), f"XDG_RUNTIME_DIR={self.xdg}",
                "podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", *args]  # fmt: skip

    def remove(self) -> None:
        for pid_file in (Path(f"/tmp/strata-run-{self.uid}/pause.pid"), self.xdg / "libpod/tmp/pause.pid"):
            try:
                pid = int(pid_file.read_text())
                if os.stat(f"/proc/{pid}").st_uid == self.uid:
                    os.kill(pid, 9)
            except (OSError, ValueError):
                pass
        shutil.rmtree(f"/tmp/strata-run-{self.uid}", ignore_errors=True)
        subprocess.run(["userdel", "-r", self.name], check=False, capture_output=True)
        for path, flag in (("/etc/subuid", "--del-subuids"), ("/etc/subgid", "--del-subgids")):
            for line in Path(path).read_text().splitlines():
                fields = line.split(":")
                if fields[0] == self.name:
                    start, count = int(fields[1]), int(fields[2])
                    subprocess.run(["usermod", flag, f"{start}-{start + count - 1}", self.name], check=False)


@contextmanager
def bench_user() -> Iterator[BenchUser]:
    base = Path(tempfile.mkdtemp(prefix="strata-rlbench-"))
    base.chmod(0o755)
    (base / "python").mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(Path(sys.base_prefix).resolve()), str(base / "python")],
                   check=True)  # fmt: skip
    user = None
    try:
        user = BenchUser(base)
        yield user
    finally:
        if user is not None:
            user.remove()
        subprocess.run(["umount", str(base / "python")], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _one(argv: list[str], env: dict[str, str] | None, cwd: Path | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the waited process tree: user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.decode(errors='replace')}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def alternating(cmds: dict[str, tuple[list[str], dict[str, str] | None, Path | None]],
                n: int) -> dict[str, tuple[Timing, Timing]]:
    """Each command once per round, ``n`` rounds after one warm-up round (so a load change on the shared
    machine hits every command alike): label -> (wall timing, CPU timing)."""
    out = {label: (Timing(label), Timing(f"{label} cpu")) for label in cmds}
    for i in range(n + 1):
        for label, (argv, env, cwd) in cmds.items():
            wall, cpu = _one(argv, env, cwd)
            if i:
                out[label][0].runs.append(wall)
                out[label][1].runs.append(cpu)
    return out


def measure(user: BenchUser, image_tar: Path, root: Path) -> tuple[list[Comparison], list[Comparison]]:
    """(wall-clock rows, CPU-time rows): rootless strata against rootful strata and rootless podman."""
    s = [sys.executable, "-m", "strata", "--root", str(root)]  # this checkout's strata, as root
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run([*s, "import", str(image_tar), "rlb:1"], check=True, capture_output=True, env=env)
    subprocess.run(user.strata("import", str(image_tar), "rlb:1"), check=True, capture_output=True, cwd=user.home)
    subprocess.run(user.podman("import", str(image_tar), "localhost/rlb:1"), check=True, capture_output=True,
                   cwd=user.home)  # fmt: skip
    walls, cpus = [], []
    for label, net in (("--network none", ["--network", "none"]), ("default network", [])):
        got = alternating({
            "rootless": (user.strata("run", "--rm", *net, "rlb:1", "true"), None, user.home),
            "root": ([*s, "run", "--rm", *net, "rlb:1", "true"], env, None),
            "podman": (user.podman("run", "--rm", *net, "localhost/rlb:1", "true"), None, user.home),
        }, repeat_count(7))  # fmt: skip
        for rows, at in ((walls, 0), (cpus, 1)):
            rows.append(Comparison(f"run --rm true, {label}", got["rootless"][at], got["root"][at], peer="strata-root"))
            rows.append(Comparison(f"run --rm true, {label}", got["rootless"][at], got["podman"][at], peer="podman"))
    return walls, cpus


def main() -> int:
    if os.geteuid() != 0:
        print("rootless_bench: needs root (it creates a test user)", file=sys.stderr)
        return 1
    for tool in ("useradd", "newuidmap", "pasta", "podman", "runc"):
        if shutil.which(tool) is None:
            print(f"rootless_bench: {tool} is missing (make debs)", file=sys.stderr)
            return 1
    with bench_user() as user, tempfile.TemporaryDirectory(prefix="strata-rlbench-root-") as tmp:
        image_tar = user.home / "busybox.tar"
        busybox_tar(image_tar)
        walls, cpus = measure(user, image_tar, Path(tmp) / "store")
        print_ratio_table("rootless strata: run --rm true, wall clock, alternating runs (ratio < 1: rootless "
                          "strata faster)", walls)  # fmt: skip
        print_ratio_table("the same runs, CPU time of the waited process tree (user+sys; detached helpers such as "
                          "pasta, slirp4netns and conmon are not counted)", cpus)  # fmt: skip
        save_results("rootless", walls)
        save_results("rootless-cpu", cpus)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
