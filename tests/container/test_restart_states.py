"""A crash loop's record between runs: Docker's daemon records an exit its restart policy restarts as
``restarting`` at once, so ``ps`` or ``wait`` never sees the container exited in between (a test polling
for ``Exited`` would stop at the first run's exit)."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.runtime


def test_a_crash_loop_is_never_recorded_exited_between_its_runs(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "crash", "--restart", "always", busybox_image, "false")
    db = sqlite3.connect(str(strata.root / "containers.db"), timeout=30)
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 60
    try:
        while not seen or seen[-1][1] < 4:  # four restarts: back-offs of 0.1, 0.2, 0.4 and 0.8 s
            assert time.monotonic() < deadline, seen
            [(data,)] = db.execute("SELECT data FROM containers WHERE name = 'crash'").fetchall()
            doc = json.loads(data)
            if not seen or seen[-1] != (doc["state"], doc["restart_count"]):
                seen.append((doc["state"], doc["restart_count"]))
    finally:
        db.close()
    assert {state for state, _ in seen} <= {"running", "restarting"}, seen
    strata("stop", "crash")
    assert strata("ps", "-a", "--format", "{{.Status}}").stdout.startswith("Exited (1) ")
