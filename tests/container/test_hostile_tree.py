"""A container's own files are hostile input to the commands that read them on the host: user
resolution for ``start``/``exec`` reads the container's ``/etc/passwd`` and ``/etc/group`` through
the kernel's in-root resolution, as a bounded read of a regular file -- a FIFO planted there cannot hang
strata, and a symlink cannot lead the read out of the container's tree."""

from __future__ import annotations

from pathlib import Path

from strata.archive.dirs import read_in_root
from strata.container.spec import resolve_user


def test_user_resolution_does_not_hang_on_a_planted_fifo(tmp_path: Path) -> None:
    """``start``/``exec`` resolve the user in strata before runc runs; that read hung forever on a FIFO
    at /etc/passwd. (runc's own lookup inside the container still opens the file: that is runc's, as
    under Docker.)"""
    import os
    import threading

    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc" / "passwd")
    os.mkfifo(root / "etc" / "group")
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(resolve_user(root, "")), daemon=True)
    t.start()
    t.join(10)
    assert result, "resolve_user blocked on the FIFO"
    assert (result[0].uid, result[0].gid) == (0, 0)  # type: ignore[attr-defined]


def test_read_in_root_stays_in_the_root_and_reads_only_regular_files(tmp_path: Path) -> None:
    import os

    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    secret = tmp_path / "host-secret"
    secret.write_text("HOST\n")
    (root / "etc" / "passwd").symlink_to(secret)  # absolute: resolved inside the root, where it is missing
    assert read_in_root(root, "/etc/passwd") is None
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to("../../../../host-secret")  # '..' stops at the root
    assert read_in_root(root, "/etc/passwd") is None
    (root / "etc" / "passwd").unlink()
    os.mkfifo(root / "etc" / "passwd")
    assert read_in_root(root, "/etc/passwd") is None  # no writer: would block without O_NONBLOCK
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "gr").symlink_to("/etc/group")  # a symlink inside the root is followed inside it
    assert read_in_root(root, "/etc/gr") == b"root:x:0:\n"
    (root / "big").write_bytes(b"x" * 100)
    assert read_in_root(root, "/big", limit=10) == b"x" * 10
