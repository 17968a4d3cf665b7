"""A crash loop's record between runs: Docker's daemon records an exit its restart policy restarts as
``restarting`` at once, so ``ps`` or ``wait`` never sees the container exited in between (a test polling
for ``Exited`` would stop at the first run's exit)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.runtime


def _record(strata: Strata, name: str) -> dict[str, object]:
    db = sqlite3.connect(str(strata.root / "containers.db"), timeout=30)
    try:
        [(data,)] = db.execute("SELECT data FROM containers WHERE name = ?", (name,)).fetchall()
    finally:
        db.close()
    doc: dict[str, object] = json.loads(data)
    return doc


def test_a_crash_loop_is_never_recorded_exited_between_its_runs(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "crash", "--restart", "always", busybox_image, "false")
    seen: list[tuple[object, object]] = []
    deadline = time.monotonic() + 60
    while not seen or int(str(seen[-1][1])) < 4:  # four restarts: back-offs of 0.1, 0.2, 0.4 and 0.8 s
        assert time.monotonic() < deadline, seen
        doc = _record(strata, "crash")
        if not seen or seen[-1] != (doc["state"], doc["restart_count"]):
            seen.append((doc["state"], doc["restart_count"]))
    assert {state for state, _ in seen} <= {"running", "restarting"}, seen
    strata("stop", "crash")
    assert strata("ps", "-a", "--format", "{{.Status}}").stdout.startswith("Exited (1) ")


def test_a_keeper_taking_over_during_the_back_off_counts_the_restart_once(strata: Strata, busybox_image: str,
                                                                         tmp_path: Path) -> None:
    """The monitor is killed while it waits out a back-off (the restart already counted): its keeper goes
    on with the policy, and the run it starts is that same restart."""
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    # runs started once ``hold`` exists stay up: the keeper's run is seen running however late the test
    # looks (a run of 0.3 s could end, and be counted again, between two looks on a loaded machine)
    strata("run", "-d", "--name", "crash", "--restart", "always", "-v", f"{ctl}:/ctl", busybox_image, "sh", "-c",
           "sleep 0.3; [ -e /ctl/hold ] && exec sleep 1000; exit 1")
    deadline = time.monotonic() + 120
    while True:  # early in a back-off of 1.6 s or more (the fifth restart's, or a later, longer one)
        doc = _record(strata, "crash")
        count = int(str(doc["restart_count"]))
        if doc["state"] == "restarting" and count >= 5 and time.time() - float(str(doc["finished_at"])) < 0.5:
            break
        assert time.monotonic() < deadline, doc
        time.sleep(0.01)
    (ctl / "hold").touch()
    os.kill(int(str(doc["monitor_pid"])), signal.SIGKILL)
    while (doc := _record(strata, "crash"))["state"] != "running":
        assert time.monotonic() < deadline and doc["state"] == "restarting", doc
        time.sleep(0.01)
    assert doc["restart_count"] == count and doc["monitor_pid"] not in (0, None), (count, doc)
    strata("stop", "-t", "1", "crash")
    assert strata("inspect", "-f", "{{.State.Status}}", "crash").stdout == "exited\n"
