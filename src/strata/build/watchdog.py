"""A build that dies without cleaning up (kill -9, a crash) must not leave its step container running
or its rootfs mounted. Before its first step container runs, a build starts this small watcher in a
session of its own: it waits on the build's pidfd and, once the build is gone, removes the containers that build left (``reap_orphans``)."""

from __future__ import annotations

import os
import sys
import threading

from strata.container.records import ContainerStore, pid_alive, process_start

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

__all__ = ["BUILDER_LABEL", "ensure", "reap_after", "reap_orphans", "unmount_layer_trees"]

BUILDER_LABEL = "strata.build.builder"  # "<pid>:<start time>" of the build that made the container


def reap_orphans(store: ContainerStore) -> int:
    """Remove step containers of builds that died (kill -9, a crash): their builder process is gone.
    Every build does this first, so an interrupted build leaves nothing behind for long."""
    removed = 0
    for c in store.containing(f'"{BUILDER_LABEL}"'):  # only records with the label are read (JSON: the key quoted)
        owner = str((c.config.get("Labels") or {}).get(BUILDER_LABEL) or "")
        pid, _, start = owner.partition(":")
        if not pid.isdigit() or pid_alive(int(pid), int(start) if start.isdigit() else 0):
            continue
        from strata.container import lifecycle as lc  # loaded only when there is something to remove

        lc.remove(store, c, force=True)
        removed += 1
    return removed


_started: set[str] = set()
_children: list[subprocess.Popen[bytes]] = []
_lock = threading.Lock()

# the watcher imports nothing of strata until the build is gone: waiting costs no start-up time
_WATCHER = """
import os, select, sys
try:
    fd = os.pidfd_open(int(sys.argv[1]))
    select.select([fd], [], [])
except OSError:
    pass
from strata.build.watchdog import reap_after
reap_after(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
"""


def ensure(root: Path | str) -> None:
    """Start the watcher of this process for store ``root`` (once)."""
    key = str(root)
    with _lock:
        if key in _started:
            return
        _started.add(key)
        import subprocess  # with the first step container (a cached rebuild starts none)

        pid = os.getpid()
        _children.append(subprocess.Popen(
            [sys.executable, "-c", _WATCHER, str(pid), str(process_start(pid)), key],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True,
        ))  # fmt: skip
        _checkpointed_after()


def _checkpointed_after() -> None:
    """The watcher closes the store and the container records after the build: a build program may leave
    its own connections to its exit (store.db.exit_without_close), without their closing checkpoints."""
    from strata.container.records import checkpointed_after_exit as records_after
    from strata.store.db import checkpointed_after_exit as db_after

    records_after()
    db_after()


def reap_after(pid: int, start: int, root: str) -> None:
    """Build ``pid`` (started at ``start``) has ended: remove what it left behind."""
    if pid_alive(pid, start):
        return  # not watchable (no pidfd): the next build reaps instead
    with ContainerStore(root) as store:
        reap_orphans(store)
    from strata.store.db import connect

    connect(os.path.join(root, "strata.db")).close()  # the build's WAL checkpointed, if it left that to its exit
    unmount_layer_trees(root, pid)


def unmount_layer_trees(root: str, pid: int) -> None:
    """The read-only layer trees (``build.layertree``) and scratch step roots (``build.steps``) build
    ``pid`` left mounted, unmounted and removed."""
    import shutil

    from strata.build.layertree import mount_prefix, unmount
    from strata.store.root import StoreRoot

    tmp = StoreRoot(root).tmp
    try:
        names = [e.name for e in os.scandir(tmp) if e.name.startswith(mount_prefix(pid))]
    except FileNotFoundError:
        return
    for name in names:
        for mounted in ("root", "merged"):  # a layer tree's; a scratch step root's (build.steps)
            unmount(os.path.join(tmp, name, mounted))
        shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
