"""What the rootless tests share besides their fixtures (those are in conftest.py): the test user as a
value, its pause process, loopback ports and a busybox rootfs. Imported as ``rootlesshelpers`` (a unique
name: ``from conftest import`` breaks when pytest collects another directory's conftest.py as well)."""

from __future__ import annotations

import io
import socket
import subprocess
import sysconfig
import tarfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["APPLETS", "SRC", "User", "busybox_rootfs", "free_port", "http_get", "import_busybox", "pause_pid", "wait_port"]

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


def pause_pid(uid: int) -> int | None:
    try:
        return int(Path(f"/tmp/strata-run-{uid}/pause.pid").read_text())
    except (OSError, ValueError):
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
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


def http_get(port: int, timeout: float = 60) -> str:
    """The body ``127.0.0.1:port/`` answers, retried until ``timeout`` (the last error raised then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                body: str = r.read().decode()
                return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


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


def import_busybox(user: User, ref: str) -> str:
    """``busybox_rootfs`` imported into the user's store as ``ref``."""
    busybox_rootfs(user.home / "bb.tar")
    user.strata("import", "bb.tar", ref)
    return ref
