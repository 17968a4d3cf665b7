"""An unprivileged test user with subordinate id ranges (``useradd`` allocates them), running strata.

The user cannot reach the venv's interpreter (it lives under root's 0700 home), so the very same
interpreter is bind-mounted read-only into a private directory for the user's processes; the user,
its home, its ranges and the mount are removed afterwards.
"""

from __future__ import annotations

import io
import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path
    python: Path
    libdir: Path
    subuid: tuple[int, int] | None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)  # set by a test for the commands it runs

    def env(self) -> dict[str, str]:
        site = sysconfig.get_paths()["purelib"]
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(self.home),
            "USER": self.name,
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "PYTHONPATH": f"{SRC}:{site}",
            "LD_LIBRARY_PATH": str(self.libdir),
            "LC_ALL": "C.UTF-8",
            **self.extra_env,
        }

    def argv(self, *args: str) -> list[str]:
        env = [f"{k}={v}" for k, v in self.env().items()]
        return ["runuser", "-u", self.name, "--", "env", "-i", *env, str(self.python), "-m", "strata", *args]

    def strata(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.argv(*args),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"strata {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.argv(*args), cwd=self.home, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc


def _ranges(path: str, name: str) -> tuple[int, int] | None:
    for line in Path(path).read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 3 and fields[0] == name:
            return int(fields[1]), int(fields[2])
    return None


def _python_mount(base: Path) -> tuple[Path, Path]:
    """The running interpreter's installation, bind-mounted read-only under ``base``."""
    prefix = Path(sys.base_prefix).resolve()
    target = base / "python"
    target.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(prefix), str(target)], check=True)
    exe = Path(os.path.realpath(sys.executable))
    return target / exe.relative_to(prefix), target / "lib"


def pause_pid(uid: int) -> int | None:
    try:
        return int(Path(f"/tmp/strata-run-{uid}/pause.pid").read_text())
    except (OSError, ValueError):
        return None


def _stop_pause(uid: int) -> None:
    """The user's pause process (started by these tests, through strata), by its recorded pid."""
    pid = pause_pid(uid)
    if pid is not None and Path(f"/proc/{pid}").exists() and os.stat(f"/proc/{pid}").st_uid == uid:
        os.kill(pid, 9)
    shutil.rmtree(f"/tmp/strata-run-{uid}", ignore_errors=True)


@pytest.fixture(scope="module")
def make_user() -> Iterator[Callable[..., User]]:
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("newuidmap"):
        pytest.skip("needs root, useradd and newuidmap (uidmap)")
    base = Path(tempfile.mkdtemp(prefix="strata-rootless-"))
    base.chmod(0o755)
    python, libdir = _python_mount(base)
    made: list[User] = []

    def make(subids: bool = True) -> User:
        name = f"strl{uuid.uuid4().hex[:8]}"
        home = base / name
        count = "65536" if subids else "0"
        subprocess.run(
            ["useradd", "-m", "-d", str(home), "-s", "/bin/sh", "-K", f"SUB_UID_COUNT={count}",
             "-K", f"SUB_GID_COUNT={count}", name],
            check=True,
        )  # fmt: skip
        pw = pwd.getpwnam(name)
        sub = _ranges("/etc/subuid", name)
        made.append(User(name, pw.pw_uid, pw.pw_gid, home, python, libdir, sub))
        assert (sub is not None) == subids and (_ranges("/etc/subgid", name) is not None) == subids
        return made[-1]

    try:
        yield make
    finally:
        for u in made:
            name = u.name
            for proc in u.procs:
                proc.terminate()
                proc.wait(timeout=30)
            _stop_pause(u.uid)
            for _ in range(100):  # userdel refuses while a process of the user (a dying pasta) is left
                if subprocess.run(["userdel", "-r", name], check=False, capture_output=True).returncode in (0, 6):
                    break
                time.sleep(0.1)
            for path in ("/etc/subuid", "/etc/subgid"):
                if _ranges(path, name) is not None:
                    flag = "--del-subuids" if path.endswith("subuid") else "--del-subgids"
                    start, count = _ranges(path, name) or (0, 0)
                    subprocess.run(["usermod", flag, f"{start}-{start + count - 1}", name], check=False)
        subprocess.run(["umount", str(base / "python")], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def user(make_user: Callable[..., User]) -> User:
    return make_user()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the registry exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the registry did not listen in time")


APPLETS = ("sh", "id", "stat", "sleep", "ps", "cat", "chown", "mkdir", "readlink", "true", "rm", "touch", "ls",
           "echo", "mount", "httpd", "wget", "nc", "find", "ip", "cp")  # fmt: skip


def busybox_rootfs(path: Path) -> None:
    """A rootfs tar: a static busybox with its applets, /etc/passwd, /var/www and a dir owned by 1000."""
    data = Path("/bin/busybox").read_bytes()
    with tarfile.open(path, "w") as tar:
        for name, uid in (("bin", 0), ("etc", 0), ("var", 0), ("var/www", 0), ("home", 0), ("home/user", 1000),
                          ("tmp", 0)):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o755, uid, uid, 1e9
            info.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        for name, content in (("bin/busybox", data), ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
                              ("var/www/index.html", b"hello from a rootless container\n")):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o755, 1e9
            tar.addfile(info, io.BytesIO(content))
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "busybox", 1e9
            tar.addfile(link)
    path.chmod(0o644)
