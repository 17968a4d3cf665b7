"""The store is private (Docker after CVE-2021-41091): another local user can neither read a container's
``-e`` secrets (containers.db, containers/<id>/config.json) nor run a setuid file out of layers/,
upper/ or merged/; a store made with 0755/0644 modes is tightened by the next command; containers
still run as an unprivileged ``--user`` (the runtime sets them up as root)."""

from __future__ import annotations

import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

SECRET = "hunter2-7f3c9a"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
PREPARE = "cp /bin/busybox /suid && chmod 4755 /suid && touch /ready && exec sleep 300"


@pytest.fixture
def root() -> Iterator[Path]:
    """A store below a directory every user may enter (pytest's own tmp dirs are 0700), so only the
    store's own modes stand between another user and its files."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    base = Path(tempfile.mkdtemp(prefix="strata-modes-"))
    base.chmod(0o755)
    yield base / "store"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(str(base) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def cleanup(strata: Strata) -> Iterator[None]:
    yield
    ids = strata("ps", "-aq", "--no-trunc", check=False).stdout.split()
    if ids:
        strata("rm", "-f", *ids, check=False)


def _nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as nobody. setpriv keeps root's capabilities until its own execve (so it finds
    any program): a shell started by it looks the program up without them."""
    argv = ("/bin/sh", "-c", 'exec "$0" "$@"', *argv)
    return subprocess.run([*NOBODY, *argv], capture_output=True, text=True, errors="replace", timeout=30,
                          check=False)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _denied(*argv: str) -> bool:
    res = _nobody(*argv)
    return res.returncode != 0 and "Permission denied" in res.stderr and SECRET not in res.stdout


def _start(strata: Strata, name: str, *opts: str, script: str = PREPARE, ready: str = "/ready") -> str:
    strata("run", "-d", "--name", name, "-e", f"SECRET={SECRET}", *opts, "img:1", "sh", "-c", script)
    deadline = time.monotonic() + 60
    while strata("exec", name, "test", "-e", ready, check=False).returncode != 0:
        assert time.monotonic() < deadline, "the container never got ready"
        time.sleep(0.1)
    return strata("container", "inspect", "-f", "{{.Id}}", name).stdout.strip()


def _secret_files(root: Path, cid: str) -> list[Path]:
    files = [p for p in root.glob("containers.db*") if p.is_file()]
    files.append(root / "containers" / cid / "config.json")
    # the secret really is in there (else the checks below would prove nothing)
    assert any(SECRET.encode() in p.read_bytes() for p in files[:-1]) and SECRET in files[-1].read_text()
    return files


def _setuid_files(root: Path, cid: str) -> list[Path]:
    cdir = root / "containers" / cid
    found = [cdir / "upper" / "suid", cdir / "merged" / "suid", *root.glob("layers/*/suid")]
    assert all(p.stat().st_mode & stat.S_ISUID for p in found)
    return found


def _assert_private(root: Path, cid: str) -> None:
    for path in _secret_files(root, cid):
        assert _denied("cat", str(path)), path
    for path in _setuid_files(root, cid):
        assert _denied(str(path), "id"), path
    assert _denied("ls", str(root))


pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("cleanup")]


@pytest.fixture
def img(strata: Strata, rootfs_tar: Path) -> None:
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    strata("import", "-c", 'CMD ["/bin/sh"]', str(rootfs_tar), "img:1")


def test_a_new_store_is_private(strata: Strata, root: Path, img: None) -> None:
    cid = _start(strata, "sec")
    strata("commit", "sec", "img:2")  # its layer (with /suid) is unpacked into layers/ by the next run
    strata("run", "--rm", "img:2", "true")
    _assert_private(root, cid)
    assert _mode(root) == 0o710
    for name in ("blobs", "layers", "containers", "runtime"):
        assert _mode(root / name) == 0o710, name
    assert _mode(root / "tmp") == 0o700
    for db in [*root.glob("strata.db*"), *root.glob("containers.db*")]:
        assert _mode(db) == 0o600, db
    assert _mode(root / "containers" / cid / "config.json") == 0o600


def test_an_old_open_store_is_tightened_by_the_next_command(strata: Strata, root: Path, img: None) -> None:
    cid = _start(strata, "old")
    strata("commit", "old", "img:2")
    strata("run", "--rm", "img:2", "true")
    # what an older strata left: 0755 directories, 0644 files
    for path in [root, *(p for p in root.iterdir() if p.is_dir())]:
        path.chmod(0o755)
    for path in [*_secret_files(root, cid), *root.glob("strata.db*")]:
        path.chmod(0o644)
    res = _nobody("cat", str(root / "containers" / cid / "config.json"))
    assert SECRET in res.stdout  # the weakness this test is about
    strata("ps")
    assert _mode(root) == 0o710 and _mode(root / "tmp") == 0o700 and _mode(root / "layers") == 0o710
    assert all(_mode(p) == 0o600 for p in [*root.glob("containers.db*"), *root.glob("strata.db*")])
    _assert_private(root, cid)
    # a restarted container's bundle is written 0600 again
    strata("rm", "-f", "old")
    cid = _start(strata, "again")
    assert _mode(root / "containers" / cid / "config.json") == 0o600


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_containers_still_run_as_an_unprivileged_user(strata: Strata, root: Path, img: None, driver: str) -> None:
    script = "id -u; cat /etc/hosts /etc/resolv.conf >/dev/null && echo read; echo x > /tmp/x && echo wrote"
    out = strata("run", "--rm", "--storage-driver", driver, "--user", "1000:1000", "img:1", "sh", "-c", script)
    assert out.stdout.splitlines() == ["1000", "read", "wrote"]
    _start(strata, f"u-{driver}", "--storage-driver", driver, "--user", "65534",
           script="touch /tmp/ready && exec sleep 300", ready="/tmp/ready")
    assert strata("exec", f"u-{driver}", "id", "-u").stdout == "65534\n"
    assert strata("exec", "-u", "1000", f"u-{driver}", "sh", "-c", "id -u; ls / >/dev/null && echo ok").stdout == (
        "1000\nok\n")
