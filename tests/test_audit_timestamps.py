"""Docker's ``GetTimestamp`` as the audit of issues 12/15 compared it with Docker 20.10: a duration counts
back from now in whole seconds (Go's ``Unix()``: ``logs --until 3s`` leaves out a line written 2.6 s
ago), and ``0`` is the Unix time 0, never a zero duration (``events --since 0`` is every event;
``image prune --filter until=0`` prunes nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from strata.compat.gotime import get_timestamp
from strata.container.filters import parse_timestamp
from strata.container.logopts import parse_log_time

SRC = Path(__file__).resolve().parents[1] / "src"


def test_a_duration_counts_back_in_whole_seconds() -> None:
    assert get_timestamp("3s", now=100.7) == 97.0
    assert parse_timestamp("3s", now=100.7) == 97.0
    assert parse_log_time("3s", "until", now=100.7) == 97.0
    assert parse_log_time("1.5s", "since", now=100.2) == 98.0


def test_zero_is_the_unix_epoch_not_a_duration() -> None:
    assert get_timestamp("0", now=100.0) == 0.0
    assert parse_timestamp("0", now=100.0) == 0.0
    assert parse_log_time("0", "since", now=100.0) == 0.0
    assert get_timestamp("0s", now=100.0) == 100.0


def test_events_since_zero_until_now_is_every_event(tmp_path: Path) -> None:
    env = {**os.environ, "STRATA_ROOT": str(tmp_path / "root"), "PYTHONPATH": str(SRC)}
    res = subprocess.run([sys.executable, "-m", "strata", "events", "--since", "0", "--until",
                          str(int(time.time()))], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr  # was: `since` time (0) cannot be after `until` time (...)
