"""The network teardown of a ``--rm`` container, finished off the user's critical path.

netavark's teardown of a container spends most of its time in iptables and the kernel. For a container
that is removed anyway, strata forgets its addresses and ports at once and lets a detached child
finish the teardown while it holds the networks lock: nothing can allocate, or see the store's
networks half torn down, until it is done. A ``releasing/<id>.json`` note says what is left to
undo; whoever next holds the lock and finds a note finishes it (the child was killed), since only
the lock's holder can be working on one.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strata.atomicfile import write_bytes_atomic
from strata.container.network import netavark
from strata.container.network.netns import remove_netns
from strata.container.records import Container, ContainerStore, container_dir
from strata.errors import StrataError

__all__ = ["finish_releases", "release_in_background"]


def _notes(root: Path) -> Path:
    return root / "networks" / "releasing"


def _undo(root: Path, netns: Path, options: dict[str, Any] | None) -> None:
    if options is not None and netns.exists():
        try:
            netavark.teardown(root / "networks" / "netavark", netns, options)
        except StrataError:
            pass  # what netavark could not undo went with the namespace
    remove_netns(netns)


def finish_releases(root: Path) -> None:
    """Undo what releases that died left (call with the networks lock held)."""
    notes = _notes(root)
    if not notes.is_dir():
        return
    for note in notes.glob("*.json"):
        try:
            data = json.loads(note.read_text())
            _undo(root, Path(str(data["netns"])), data.get("options"))
        except (OSError, ValueError, KeyError, TypeError, StrataError):
            pass
        note.unlink(missing_ok=True)


def _detach(lock: int) -> None:
    """In the forked child: nothing of the parent's held but ``lock`` (a pipe's write end or a socket kept
    would hold back its reader's end of file while netavark tears down: a ``run --rm``'s output, a monitor's
    report, an attach socket)."""
    from strata.container.tty import hold_only

    hold_only(lock)
    os.chdir("/")


def release_in_background(store: ContainerStore, c: Container, forget: Callable[[ContainerStore, Container], Container]
                          ) -> Container | None:
    """Forget ``c``'s addresses and ports now and leave netavark's teardown to a detached child that
    holds the networks lock; None when there is nothing to hand over (the caller tears down itself)."""
    from strata.rootless import is_rootless

    if is_rootless():  # the rootless namespace may have to go too: the caller tears down itself
        return None
    root = store.root
    try:
        options = json.loads((container_dir(root, c.id) / "netavark.json").read_text())
    except (OSError, ValueError):
        return None
    if not c.netns:
        return None
    fd = os.open(root / "networks" / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        finish_releases(root)
        note = _notes(root) / f"{c.id}.json"
        note.parent.mkdir(exist_ok=True)
        write_bytes_atomic(note, json.dumps({"netns": c.netns, "options": options}).encode())
        netns = Path(c.netns)
        c = forget(store, c)  # the note owns the namespace now
        from strata.container.tty import fork_session

        with store.released():
            pid = fork_session()  # a ^C of the user's command now leaves the note's undo to the child
            if pid == 0:  # the intermediate: its child inherits the lock and outlives us
                try:
                    _detach(fd)
                    if os.fork() == 0:
                        _undo(root, netns, options)
                        note.unlink(missing_ok=True)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
    finally:
        os.close(fd)  # the child's copy of the lock stays held until it is done
    return c
