"""The json-file log's timestamps (Docker's RFC 3339 with nanoseconds, in UTC) are formatted with the
time module (the log writer itself loads no datetime): the same text as datetime's calendar gives, the
second carried only when the fraction rounds up to a whole one (datetime's microsecond rounding put
a fraction of .9999995 or more a second too late: ``00:01:00.999999600Z`` for 59.9999996)."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from strata.container.logs import rfc3339nano


def _by_datetime(ts: float) -> str:
    secs = int(ts)
    nanos = round((ts - secs) * 1e9)
    secs, nanos = secs + nanos // 1_000_000_000, nanos % 1_000_000_000
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def test_timestamps_match_datetimes_calendar() -> None:
    rng = random.Random(10)
    samples = [1.0, 1.5, 951782400.25, 1700000000.0, 1714564800.123456789, 4102444800.999, 253402300799.0]
    samples += [rng.uniform(1, 4102444800) for _ in range(2000)]
    for ts in samples:
        assert rfc3339nano(ts) == _by_datetime(ts), ts
    assert rfc3339nano(1714564800.123456789).startswith("2024-05-01T12:00:00.1234567")
    assert rfc3339nano(0) == "0001-01-01T00:00:00Z"


def test_a_fraction_rounding_up_carries_the_second() -> None:
    assert rfc3339nano(59.9999999999) == "1970-01-01T00:01:00.000000000Z"
    assert rfc3339nano(1.25) == "1970-01-01T00:00:01.250000000Z"
    assert rfc3339nano(59.9999996) == "1970-01-01T00:00:59.999999600Z"  # no carry below a whole second


def test_the_log_writer_loads_no_datetime(tmp_path: Path) -> None:
    code = (
        "import sys, pathlib, json\n"
        "from strata.container.logs import JsonLogWriter\n"
        "w = JsonLogWriter(pathlib.Path(sys.argv[1]))\n"
        "w.write('stdout', b'hi\\n')\n"
        "w.close()\n"
        "print(json.loads(open(sys.argv[1]).read())['time'][:2], 'datetime' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, f"{tmp_path}/log.json"], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["20", "False"]
