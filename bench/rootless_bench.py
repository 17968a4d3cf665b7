"""``run --rm IMAGE true`` as an unprivileged user (rootless strata: a user namespace joined through
the pause process, overlay with userxattr, pasta for the default network) next to rootful strata and
next to rootless ``podman run`` with runc (Debian's podman 4.3; cgroupfs manager: this host has no
delegated cgroup v2, so neither applies limits). Each with ``--network none`` and on the default network
(strata: pasta; podman 4.3: slirp4netns).

Needs root (it creates a throw-away user with subordinate ids, bind-mounts this interpreter read-only
for it, and removes both afterwards), busybox-static, uidmap, passt and podman.
"""

from __future__ import annotations

import io
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # type: ignore[import-not-found]
    REPO,
    Comparison,
    print_ratio_table,
    save_results,
    time_command,
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


def measure(user: BenchUser, image_tar: Path, root: Path) -> list[Comparison]:
    s = [sys.executable, "-m", "strata", "--root", str(root)]  # this checkout's strata, as root
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run([*s, "import", str(image_tar), "rlb:1"], check=True, capture_output=True, env=env)
    subprocess.run(user.strata("import", str(image_tar), "rlb:1"), check=True, capture_output=True, cwd=user.home)
    subprocess.run(user.podman("import", str(image_tar), "localhost/rlb:1"), check=True, capture_output=True,
                   cwd=user.home)  # fmt: skip
    rows = []
    for label, net in (("--network none", ["--network", "none"]), ("default network", [])):
        rootless = time_command(user.strata("run", "--rm", *net, "rlb:1", "true"), label="strata rootless",
                                cwd=user.home)  # fmt: skip
        rootful = time_command([*s, "run", "--rm", *net, "rlb:1", "true"], label="strata as root", env=env)
        podman = time_command(user.podman("run", "--rm", *net, "localhost/rlb:1", "true"), label="podman rootless",
                              cwd=user.home)  # fmt: skip
        rows.append(Comparison(f"run --rm true, {label}", rootless, rootful, peer="strata-root"))
        rows.append(Comparison(f"run --rm true, {label}", rootless, podman, peer="podman"))
    return rows


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
        rows = measure(user, image_tar, Path(tmp) / "store")
        print_ratio_table("rootless strata: run --rm true (ratio < 1: rootless strata faster)", rows)
        save_results("rootless", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
