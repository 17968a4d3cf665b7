"""``cp`` side by side with Docker 20.10 (the same commands against a private dockerd and strata: exit codes,
errors after Docker's prefixes, the trees they leave on the host and in the container), and ``cp``'s
safety: a symlink planted in the container, or swapped in while a copy runs, never leads out of the
container's root (Docker's CVE-2018-15664 / CVE-2019-14271 class)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime

Run = Callable[..., subprocess.CompletedProcess[str]]

_SETUP = ("mkdir -p /d/sub /t; echo hi > /d/f; echo x > /d/sub/y; ln -s /etc /data; ln -s f /d/lnk; "
          "touch -d 2020-01-02 /d/f /d/sub/y; sleep 1000")

# (arguments, whether the copy goes from the host into the container)
_FROM_CONTAINER = [
    "c:/nope .", "nope-parity-cp:/x .", "c:/d/f nodir/", "c:/d/f nodir/x", "c:/d newd", "a b", "c:/a c:/b",
    "c:/d/f/ x", "c:/d/f/. x", "c:/d/sub/ x", "c:/d/. dd", "c:/d/lnk l1", "-L c:/d/lnk l2", "c:/data dt",
    "c:/d/f newd", "c:/d/sub/y newd/sub/", "c:/d newd", "-L c:/d/lnk newd/sub/y",
]
_TO_CONTAINER = [
    "/nope c:/tmp", "hostdir c:/t/", "hostdir c:/t/newdir", "hostdir/. c:/t/contents", "hostdir/ c:/t/slash",
    "own c:/t/", "own c:/t/own2", "-a own c:/t/own3", "ldir c:/t/ldir", "-L ldir c:/t/ldirL",
    "ldir/ c:/t/ldirS", "own c:/t/hostdir", "hostdir c:/t/own2", "own c:/data/", "own c:/t/nope/",
    "own c:/t/nope/x", "hostdir/a c:/t/hostdir/sub/", "hostdir c:/t/hostdir/la/", "hostdir c:/d/f",
    "- c:/d/f", "own c:/d/f/",
]


def _error(text: str, names: dict[str, str]) -> str:
    lines = [re.sub(r"^(Error response from daemon: |Error: )", "", line) for line in text.strip().splitlines()]
    out = "\n".join(lines)
    out = re.sub(r"lstat /\S+/merged/", "lstat ROOT/", out)  # the container's root on the host
    for name, label in names.items():
        out = out.replace(name, label)
    return out


def _host_tree(top: Path) -> list[str]:
    rows = []
    for path in sorted(top.rglob("*")):
        st = path.lstat()
        link = os.readlink(path) if path.is_symlink() else ""
        size = st.st_size if path.is_file() and not path.is_symlink() else 0
        rows.append(f"{path.relative_to(top)} {oct(st.st_mode)} {st.st_uid}:{st.st_gid} {size} {link}")
    return rows


def _make_host_source(top: Path) -> None:
    (top / "hostdir" / "sub").mkdir(parents=True)
    (top / "hostdir" / "a").write_text("a\n")
    (top / "hostdir" / "sub" / "b").write_text("b\n")
    (top / "hostdir" / "la").symlink_to("a")
    os.link(top / "hostdir" / "a", top / "hostdir" / "hard")
    (top / "own").write_text("own\n")
    os.chown(top / "own", 1234, 5678)
    os.chmod(top / "own", 0o640)
    (top / "ldir").symlink_to("hostdir")


def _until_in(run: Run, name: str, *check: str, timeout: float = 60.0) -> None:
    """Until ``check`` succeeds in the container (its own script, started by ``run -d``, may not be done)."""
    deadline = time.monotonic() + timeout
    while run("exec", name, *check, check=False).returncode != 0:
        assert time.monotonic() < deadline, check
        time.sleep(0.1)


def _side(run: Run, image: str, work: Path, name: str) -> tuple[list[tuple[int, str]], list[str], str]:
    """Run every cp command with ``name`` as the container; (results, host tree, container tree)."""
    run("run", "-d", "--name", name, "-u", "0", image, "sh", "-c", _SETUP)
    _until_in(run, name, "test", "-L", "/d/lnk")
    _make_host_source(work)
    results = []
    for line in _FROM_CONTAINER + _TO_CONTAINER:
        args = [a.replace("c:", f"{name}:") for a in line.split()]
        res = subprocess.run([*run.argv("cp"), *args], env=run.env, cwd=work, capture_output=True, text=True,  # type: ignore[attr-defined]
                             timeout=60, check=False)
        results.append((res.returncode, _error(res.stderr, {str(work): "WORK", name: "c"})))
    inside = run("exec", name, "sh", "-c",
                 "cd /t && find . | sort | while read f; do stat -c '%n %F %a %u:%g %s' \"$f\"; done; "
                 "stat -c '%n %u:%g %a' /etc/own /d/f").stdout
    return results, _host_tree(work), inside


class _Docker:
    """``dockerd.run`` with the ``argv``/``env`` the side runner needs."""

    def __init__(self, dockerd: Dockerd) -> None:
        self.dockerd = dockerd
        self.env = dockerd.env

    def argv(self, *args: str) -> list[str]:
        return self.dockerd.argv(*args)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.dockerd.run(*args, check=check)


def test_cp_matches_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                           tmp_path: Path) -> None:
    name = f"parity-cp-{uuid.uuid4().hex[:8]}"
    docker = _Docker(dockerd)
    try:
        theirs = _side(docker, docker_busybox, tmp_path / "docker", name)  # type: ignore[arg-type]
        ours = _side(strata, busybox_image, tmp_path / "strata", name)
    finally:
        dockerd.run("rm", "-f", name, check=False)
    for line, mine, want in zip(_FROM_CONTAINER + _TO_CONTAINER, ours[0], theirs[0], strict=True):
        assert mine == want, line
    assert ours[1] == theirs[1]  # what landed on the host
    assert ours[2] == theirs[2]  # what landed in the container


def test_cp_tar_streams(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    """``cp CTR:PATH -`` writes Docker's archive (entries named after the path's last component, ``./``
    for ``/.``); ``cp - CTR:DIR`` extracts one."""
    strata("run", "-d", "--name", "tars", busybox_image, "sh", "-c", _SETUP)
    _until_in(strata, "tars", "test", "-L", "/d/lnk")  # the setup script has made what is listed below

    def names(path: str) -> list[str]:
        out = subprocess.run([*strata.argv("cp", f"tars:{path}", "-")], env=strata.env, capture_output=True,
                             check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(out)) as tf:
            return [m.name + ("/" if m.isdir() else "") for m in tf.getmembers()]

    assert names("/d") == ["d/", "d/f", "d/lnk", "d/sub/", "d/sub/y"]
    assert names("/d/.") == ["./", "./f", "./lnk", "./sub/", "./sub/y"]
    assert names("/d/lnk") == ["lnk"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("in/x")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    subprocess.run([*strata.argv("cp", "-", "tars:/t")], env=strata.env, input=buf.getvalue(), check=True)
    assert strata("exec", "tars", "cat", "/t/in/x").stdout == "abc"


def test_cp_stopped_container(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    """A stopped container's filesystem is mounted for the copy and unmounted afterwards."""
    strata("create", "--name", "stopped", busybox_image, "cat", "/hello")
    (tmp_path / "hello").write_text("from the host\n")
    strata("cp", str(tmp_path / "hello"), "stopped:/hello")
    strata("cp", "stopped:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:x:0:0")
    assert strata("start", "-a", "stopped").stdout == "from the host\n"
    cid = strata("inspect", "-f", "{{.Id}}", "stopped").stdout.strip()
    assert not os.path.ismount(strata.root / "containers" / cid / "merged")


# --- safety --------------------------------------------------------------------------------------


@pytest.fixture
def host_only(tmp_path: Path) -> Iterator[Path]:
    """A directory that exists on the host only, with a marker file a breakout would copy or replace."""
    d = Path("/tmp") / f"strata-cp-host-{uuid.uuid4().hex}"
    d.mkdir()
    (d / "secret").write_text("host secret\n")
    yield d
    import shutil

    shutil.rmtree(d, ignore_errors=True)


def test_planted_symlinks_stay_in_the_container(strata: Strata, busybox_image: str, host_only: Path,
                                                tmp_path: Path) -> None:
    """Symlinks to a host-only path (absolute, and ``../..`` deep) resolve in the container's root: reading
    through them finds nothing, writing through them writes inside the container."""
    strata("run", "-d", "--name", "planted", busybox_image, "sh", "-c",
           f"ln -s {host_only} /abs; ln -s ../../../../../../..{host_only} /rel; "
           "mkdir -p /box; ln -s / /box/up; sleep 1000")
    _until_in(strata, "planted", "test", "-L", "/box/up")
    for link in ("abs", "rel"):
        res = strata("cp", f"planted:/{link}/secret", str(tmp_path / "out"), check=False)
        assert res.returncode == 1 and f"No such container:path: planted:/{link}/secret" in res.stderr
        res = strata("cp", "-L", f"planted:/{link}", str(tmp_path / f"out-{link}"), check=False)
        assert not (tmp_path / f"out-{link}" / "secret").exists()
    (tmp_path / "payload").write_text("payload\n")
    strata("exec", "planted", "mkdir", "-p", str(host_only))
    strata("cp", str(tmp_path / "payload"), "planted:/abs/secret")
    strata("cp", str(tmp_path / "payload"), "planted:/box/up/etc/payload")
    assert (host_only / "secret").read_text() == "host secret\n"  # the host's file is untouched
    assert not Path("/etc/payload").exists()
    assert strata("exec", "planted", "cat", f"{host_only}/secret", "/etc/payload").stdout == "payload\npayload\n"


def test_hostile_tar_from_stdin_is_refused(strata: Strata, busybox_image: str, host_only: Path) -> None:
    """``cp - CTR:DIR``: names that climb out, and members below a symlink the archive made, are refused."""
    strata("run", "-d", "--name", "tarred", busybox_image, "sleep", "1000")
    for members in (
        [(f"../../../../../../..{host_only}/evil", None)],
        [("l", str(host_only)), ("l/evil", None)],
    ):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for name, target in members:
                info = tarfile.TarInfo(name)
                if target is not None:
                    info.type, info.linkname = tarfile.SYMTYPE, target
                    tf.addfile(info)
                else:
                    info.size = 4
                    tf.addfile(info, io.BytesIO(b"evil"))
        res = subprocess.run([*strata.argv("cp", "-", "tarred:/tmp")], env=strata.env, input=buf.getvalue(),
                             capture_output=True, check=False)
        assert res.returncode != 0, members
        assert sorted(p.name for p in host_only.iterdir()) == ["secret"]


def test_symlink_swapped_during_copies_never_leaves_the_root(strata: Strata, busybox_image: str,
                                                              host_only: Path, tmp_path: Path) -> None:
    """A container swaps /w between a directory and a symlink to a host-only path while copies run in
    both directions: no copy ever reads the host's file or writes next to it."""
    strata("run", "-d", "--name", "racer", busybox_image, "sh", "-c",
           f"mkdir -p /w.d; echo inner > /w.d/inner; while true; do mv /w.d /w; mv /w /w.d; "
           f"ln -s {host_only} /w; rm /w; done")
    (tmp_path / "payload").write_text("payload\n")
    errors: list[str] = []

    def copy_out(i: int) -> None:
        out = tmp_path / f"out{i}"
        subprocess.run([*strata.argv("cp", "racer:/w/", str(out))], env=strata.env, capture_output=True,
                       check=False)
        if (out / "secret").exists():
            errors.append(f"read the host's file: {out}")

    for i in range(25):
        copy_out(i)
        subprocess.run([*strata.argv("cp", str(tmp_path / "payload"), "racer:/w/")], env=strata.env,
                       capture_output=True, check=False)
        if sorted(p.name for p in host_only.iterdir()) != ["secret"]:
            errors.append("wrote into the host's directory")
            break
    assert not errors
    assert (host_only / "secret").read_text() == "host secret\n"


def test_cp_sees_volumes_and_binds_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                             docker_busybox: str, tmp_path: Path) -> None:
    """Paths on a volume or a bind mount are the mount's, running or stopped; a read-only mount refuses
    with Docker's error; nothing stays mounted afterwards."""
    name = f"parity-cpvol-{uuid.uuid4().hex[:8]}"
    bind = tmp_path / "bind"
    bind.mkdir()
    (bind / "b").write_text("bound\n")
    (tmp_path / "newf").write_text("new\n")
    docker = _Docker(dockerd)
    seen = []
    try:
        for run, image in ((strata, busybox_image), (docker, docker_busybox)):
            run("run", "-d", "--name", name, "-v", f"{name}:/vol", "-v", f"{bind}:/bind:ro", image, "sh", "-c",
                "echo invol > /vol/x; sleep 1000")
            _until_in(run, name, "test", "-s", "/vol/x")  # written, not just made (the shell opens, then writes)
            result = []
            for args in ([f"{name}:/vol/x", str(tmp_path / "x")], [f"{name}:/bind/b", str(tmp_path / "b")],
                         [str(tmp_path / "newf"), f"{name}:/vol/"], [str(tmp_path / "newf"), f"{name}:/bind/"]):
                res = run("cp", *args, check=False)
                result.append((res.returncode, _error(res.stderr, {})))
            result.append(((tmp_path / "x").read_text(), (tmp_path / "b").read_text()))
            result.append(run("exec", name, "cat", "/vol/newf").stdout)
            run("stop", "-t", "0", name)
            (tmp_path / "x").unlink()
            res = run("cp", f"{name}:/vol/newf", str(tmp_path / "x"), check=False)
            result.append((res.returncode, (tmp_path / "x").read_text()))
            (tmp_path / "x").unlink()
            (tmp_path / "b").unlink()
            run("rm", "-f", "-v", name)
            run("volume", "rm", name, check=False)
            seen.append(result)
    finally:
        dockerd.run("rm", "-f", name, check=False)
        dockerd.run("volume", "rm", name, check=False)
    assert seen[0] == seen[1]
    assert seen[0][3] == (1, "mounted volume is marked read-only")
    assert not [line for line in Path("/proc/self/mounts").read_text().splitlines() if str(strata.root) in line]


def test_cp_vfs_driver(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    """The vfs driver's full copy is the container's root: cp reads and writes it, with the same safety."""
    env = {**strata.env, "STRATA_STORAGE_DRIVER": "vfs"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(strata.argv(*args), env=env, capture_output=True, text=True, timeout=120, check=False)

    assert run("create", "--name", "vfs1", busybox_image, "cat", "/in/f").returncode == 0
    assert strata("inspect", "-f", "{{.Driver}}", "vfs1").stdout.strip() == "vfs"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "f").write_text("through vfs\n")
    assert run("cp", str(tmp_path / "in"), "vfs1:/").returncode == 0
    assert run("start", "-a", "vfs1").stdout == "through vfs\n"
    assert run("cp", "vfs1:/in", str(tmp_path / "back")).returncode == 0
    assert (tmp_path / "back" / "f").read_text() == "through vfs\n"


def test_archive_mode_owner_matches_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                           docker_busybox: str, tmp_path: Path) -> None:
    """``cp -a`` into a container with a ``USER`` gives the files that user's uid/gid (plain ``cp`` keeps the
    source's); a user the container does not know is Docker's error."""
    name = f"parity-cpown-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "own"
    src.write_text("own\n")
    os.chown(src, 1234, 5678)
    docker = _Docker(dockerd)
    seen = []
    try:
        for run, image in ((strata, busybox_image), (docker, docker_busybox)):
            run("run", "-d", "--name", name, "-u", "nobody", image, "sleep", "1000")
            run("cp", "-a", str(src), f"{name}:/tmp/a1")
            run("cp", str(src), f"{name}:/tmp/a2")
            owners = run("exec", name, "stat", "-c", "%n %u:%g", "/tmp/a1", "/tmp/a2").stdout
            run("rm", "-f", name)
            run("create", "--name", name, "-u", "nosuch", image, "true")
            res = run("cp", "-a", str(src), f"{name}:/tmp/a1", check=False)
            run("rm", "-f", name)
            seen.append((owners, res.returncode, _error(res.stderr, {})))
    finally:
        dockerd.run("rm", "-f", name, check=False)
    assert seen[0] == seen[1]
    assert seen[0][0] == "/tmp/a1 65534:65534\n/tmp/a2 1234:5678\n"


def test_cp_network_files_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                       docker_busybox: str) -> None:
    """``/etc/hostname`` and ``/etc/hosts`` are the container's own (not the empty mount points beneath)."""
    name = f"parity-cpnet-{uuid.uuid4().hex[:8]}"
    docker = _Docker(dockerd)
    seen = []
    try:
        for run, image in ((strata, busybox_image), (docker, docker_busybox)):
            run("run", "-d", "--name", name, "--hostname", "cphost", image, "sleep", "1000")
            texts = []
            for path in ("/etc/hostname", "/etc/hosts"):
                res = subprocess.run([*run.argv("cp", f"{name}:{path}", "-")], env=run.env, capture_output=True,  # type: ignore[attr-defined]
                                     timeout=60, check=True)
                with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tf:
                    member = tf.getmembers()[0]
                    data = tf.extractfile(member)
                    assert data is not None
                    texts.append((member.name, data.read().decode().splitlines()[:2]))
            run("rm", "-f", name)
            seen.append(texts)
    finally:
        dockerd.run("rm", "-f", name, check=False)
    assert seen[0] == seen[1]
    assert seen[0][0] == ("hostname", ["cphost"])
