"""The user's notes, typed as the user typed them but with strata: run -i -t, commit twice, images,
history, the rmi conflict, stop, rm, rmi twice, export/import."""

from __future__ import annotations

import re
import tarfile
import time
from pathlib import Path

import pytest
from container_helpers import Strata
from ptyrun import PtySession

pytestmark = pytest.mark.runtime


def interactive(strata: Strata, *args: str) -> PtySession:
    return PtySession(strata.argv(*args), strata.env)


def test_run_it_shell_is_a_real_terminal(strata: Strata, busybox_image: str) -> None:
    sess = interactive(strata, "run", "-i", "-t", "--name", "commit_test", busybox_image)
    sess.expect_prompt()
    sess.sendline("hostname; busybox stty size; [ -t 0 ] && echo TTY_$((40+2))")
    sess.expect(b"TTY_42")
    full_id = strata("container", "inspect", "-f", "{{.Id}}", "commit_test").stdout.strip()
    assert full_id[:12].encode() in sess.output  # hostname = 12-char container ID
    assert b"24 80" in sess.output
    sess.resize(40, 132)  # SIGWINCH to strata: the container's terminal follows
    sess.sendline("busybox stty size")
    sess.expect(b"40 132\r\n")
    sess.sendline("sleep 30")
    # once sleep runs, the shell has made it the foreground job (a Ctrl-C sent while the shell was still
    # forking could leave sleep ignoring it, and the prompt 30 s away)
    deadline = time.monotonic() + 60
    while "sleep 30" not in strata("top", "commit_test").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    sess.send(b"\x03")  # Ctrl-C reaches the container's shell, not strata
    sess.expect_prompt()
    sess.sendline("echo test_first! >> first")
    sess.expect_prompt()
    sess.sendline("exit 3")
    assert sess.wait() == 3  # the container's exit code is strata's
    ps = strata("ps", "-a").stdout
    assert re.search(r"Exited \(3\) (Less than a second|\d+ seconds?) ago", ps), ps
    assert strata("diff", "commit_test").stdout.splitlines()[-1] == "A /first" or "A /first" in strata(
        "diff", "commit_test"
    ).stdout


def test_ctrl_d_ends_the_shell(strata: Strata, busybox_image: str) -> None:
    sess = interactive(strata, "run", "-it", "--rm", busybox_image)
    sess.expect_prompt()
    sess.send(b"\x04")
    assert sess.wait() == 0
    assert strata("ps", "-aq").stdout.strip() == ""  # --rm removed it


def _commit_container(strata: Strata, image: str, name: str, line: str) -> None:
    sess = interactive(strata, "run", "-i", "-t", "--name", name, image)
    sess.expect_prompt()
    sess.sendline(line)
    sess.expect_prompt()
    sess.sendline("exit")
    assert sess.wait() == 0


def test_users_workflow(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    _commit_container(strata, busybox_image, "commit_test", "echo test_first! >> first")
    first = strata("commit", "-a", "alicek106", "-m", "my first commit", "commit_test", "commit_test:first")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", first.stdout)
    first_id = first.stdout.strip().split(":")[1]
    images = strata("images").stdout
    assert re.search(rf"commit_test\s+first\s+{first_id[:12]}\s", images), images

    sess = interactive(strata, "run", "-it", "--name", "commit_test2", "commit_test:first")
    sess.expect_prompt()
    sess.sendline("cat first; echo test_second! >> second")
    sess.expect(b"test_first!\r\n")
    sess.expect_prompt()
    # commit while it runs (paused by the freezer meanwhile), as the user did from another terminal
    second = strata("commit", "-a", "alicek106", "-m", "my second commit", "commit_test2", "commit_test:second")
    second_id = second.stdout.strip().split(":")[1]
    sess.sendline("echo still-$((1+1))")
    sess.expect(b"still-2")

    history = strata("history", "commit_test:second").stdout.splitlines()
    assert re.match(rf"{second_id[:12]}\s+.*/bin/sh\s+13B\s+my second commit$", history[1]), history
    assert re.match(rf"{first_id[:12]}\s+.*/bin/sh\s+12B\s+my first commit$", history[2]), history
    cid2 = strata("container", "inspect", "-f", "{{.Id}}", "commit_test2").stdout.strip()

    rmi = strata("rmi", "commit_test:first", check=False)
    assert rmi.returncode == 1
    assert rmi.stderr.strip() == (
        'Error: conflict: unable to remove repository reference "commit_test:first" (must force) - '
        f"container {cid2[:12]} is using its referenced image {first_id[:12]}"
    )
    assert strata("stop", "commit_test2").stdout == "commit_test2\n"
    assert sess.wait() in (0, 143, 137)
    assert strata("rm", "commit_test2").stdout == "commit_test2\n"
    # export / import of the first container: one layer holding the whole filesystem
    strata("export", "-o", str(tmp_path / "rootFS.tar"), "commit_test")
    with tarfile.open(tmp_path / "rootFS.tar") as tar:
        names = set(tar.getnames())
        assert {"first", "bin/busybox", "etc/passwd"} <= names
        assert tar.extractfile("first").read() == b"test_first!\n"  # type: ignore[union-attr]
    imported = strata("import", str(tmp_path / "rootFS.tar"), "myimage:0.0").stdout.strip()
    hist = strata("history", "myimage:0.0").stdout.splitlines()
    assert len(hist) == 2 and hist[1].startswith(imported.split(":")[1][:12])
    assert strata("run", "--rm", "myimage:0.0", "cat", "/first").stdout == "test_first!\n"

    # Docker: removing the tag of an image with a child only untags it (the seed's transcript)
    assert strata("rmi", "commit_test:first").stdout == "Untagged: commit_test:first\n"
    out = strata("rmi", "commit_test:second").stdout.splitlines()
    assert out[0] == "Untagged: commit_test:second"
    assert out[1] == f"Deleted: sha256:{second_id}"
    assert f"Deleted: sha256:{first_id}" in out
    assert "ubuntu" in strata("images").stdout

