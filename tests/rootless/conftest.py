"""An unprivileged test user with subordinate id ranges (``useradd`` allocates them), running strata.

The user cannot reach the venv's interpreter (it lives under root's 0700 home), so the very same
interpreter is bind-mounted read-only into a private directory for the user's processes; the user,
its home, its ranges and the mount are removed afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rootlesshelpers import User, pause_pid


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
