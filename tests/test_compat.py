"""strata.compat: Go's and Docker's helpers behave as the Go code they imitate."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from strata.compat.filters import parse_filters
from strata.compat.gotime import (
    DurationError,
    duration_seconds,
    format_duration,
    get_timestamp,
    parse_duration,
)
from strata.compat.neterrors import dial_prefix, go_net_error
from strata.compat.units import human_duration, human_size
from strata.errors import StrataError, UsageError


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("-0", 0),
        ("300ms", 300_000_000),
        ("1h30m", 5400 * 10**9),
        ("-1.5h", -5400 * 10**9),
        ("2h45m0.5s", (2 * 3600 + 45 * 60) * 10**9 + 500_000_000),
        (".5s", 500_000_000),
        ("1.s", 10**9),
        ("1us", 1000),
        ("1µs", 1000),  # U+00B5
        ("1μs", 1000),  # U+03BC
        ("0.0000000001s", 0),  # truncated to whole nanoseconds, as Go
        ("9223372036854775807ns", 2**63 - 1),
    ],
)
def test_parse_duration_is_gos(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "why"),
    [  # the CLI of Docker 20.10 says these (docker create --health-interval TEXT)
        ("", 'invalid duration ""'),
        ("+", 'invalid duration "+"'),
        ("h", 'invalid duration "h"'),
        (".s", 'invalid duration ".s"'),
        ("9223372036854775808ns", 'invalid duration "9223372036854775808ns"'),
        ("1", 'missing unit in duration "1"'),
        ("1h1", 'missing unit in duration "1h1"'),
        ("1d", 'unknown unit "d" in duration "1d"'),
        ("1h-1m", 'unknown unit "h-" in duration "1h-1m"'),
        ("1 h", 'unknown unit " h" in duration "1 h"'),
        ('1"', 'unknown unit "\\"" in duration "1\\""'),
        ("1ü", 'unknown unit "\\xc3\\xbc" in duration "1\\xc3\\xbc"'),
    ],
)
def test_parse_duration_refuses_in_gos_words(text: str, why: str) -> None:
    with pytest.raises(DurationError) as e:
        parse_duration(text)
    assert str(e.value) == f"time: {why}"
    assert isinstance(e.value, ValueError)  # the --health-* and --since callers catch ValueError
    assert duration_seconds(text) is None


def test_parse_duration_takes_gos_extremes() -> None:
    assert parse_duration("-9223372036854775808ns") == -(2**63)
    assert parse_duration("+1.5h") == 5400 * 10**9


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (999_999_999, "999.999999ms"),
        (10**9, "1s"),
        (30 * 10**9, "30s"),
        (90 * 10**9, "1m30s"),
        (90_500_000_000, "1m30.5s"),
        (3600 * 10**9, "1h0m0s"),
        (3723 * 10**9 + 5, "1h2m3.000000005s"),
        (-90 * 10**9, "-1m30s"),
        (-(2**63), "-2562047h47m16.854775808s"),
    ],
)
def test_format_duration_is_gos_duration_string(ns: int, text: str) -> None:
    assert format_duration(ns) == text


def test_get_timestamp_forms() -> None:
    assert get_timestamp("10m", now=1000.0) == 400.0
    assert get_timestamp("1700000000") == 1700000000.0
    assert get_timestamp("1700000000.25") == 1700000000.25
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert get_timestamp("2026-01-02T03:04:05Z") == when
    assert get_timestamp("2026-01-02T04:04:05+01:00") == when
    with pytest.raises(StrataError) as e:
        get_timestamp("yesterday")
    assert str(e.value) == 'failed to parse value as time or duration: "yesterday"'
    with pytest.raises(StrataError):
        get_timestamp("1e5")  # not a Unix time to Docker


def test_parse_filters_groups_dedupes_and_refuses() -> None:
    got = parse_filters(["label=a", "Label=a", "label!=b=c", "until=1h"], ("label", "label!", "until"))
    assert got == {"label": ["a"], "label!": ["b=c"], "until": ["1h"]}
    with pytest.raises(StrataError) as e:
        parse_filters(["colour=red"], ("label",))
    assert str(e.value) == "Invalid filter 'colour'" and e.value.exit_code == 1
    with pytest.raises(UsageError) as u:
        parse_filters(["dangling"], ("dangling",), command="images")
    assert str(u.value) == (
        'invalid argument "dangling" for "-f, --filter" flag: bad format of filter (expected name=value)\n'
        "See 'strata images --help'."
    )
    assert u.value.exit_code == 125
    with pytest.raises(UsageError) as p:
        parse_filters(["x"], ("until",), command="image prune", flag="--filter")
    assert str(p.value).startswith('invalid argument "x" for "--filter" flag')


def test_units() -> None:
    assert [human_size(n) for n in (0, 12, 1999, 1_980_000, 10**12)] == ["0B", "12B", "2kB", "1.98MB", "1TB"]
    assert human_size(1_234_567, 4) == "1.235MB"
    assert [human_duration(s) for s in (0.5, 1, 59, 60, 3599, 3600, 86400 * 3)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "59 minutes", "About an hour", "3 days",
    ]


def test_net_error_wording() -> None:
    assert dial_prefix("https://[::1]/v2/") == "dial tcp [::1]:443: "
    assert dial_prefix("http://127.0.0.1:5000/v2/") == "dial tcp 127.0.0.1:5000: "
    assert go_net_error(ConnectionRefusedError(), "http://127.0.0.1:5000/v2/") == (
        "dial tcp 127.0.0.1:5000: connect: connection refused"
    )
    assert go_net_error(socket.gaierror(-2, "x"), "https://nowhere.invalid/v2/") == (
        "dial tcp: lookup nowhere.invalid: no such host"
    )
    assert go_net_error(TimeoutError(), "http://10.0.0.1/") == "dial tcp 10.0.0.1:80: i/o timeout"


def test_a_real_refused_connection_reads_as_go() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v2/"
    with pytest.raises(OSError) as e:
        socket.create_connection(("127.0.0.1", port), timeout=5)
    assert go_net_error(e.value, url) == f"dial tcp 127.0.0.1:{port}: connect: connection refused"


def test_former_copies_answer_through_compat() -> None:
    """build.sendsize and server.ui.text print what compat.units says (HumanSize, HumanDuration)."""
    from strata.build.sendsize import sending_line
    from strata.compat.gotime import parse_time
    from strata.server.ui.text import ago, history_rows

    assert sending_line(7168) == "Sending build context to Docker daemon  7.168kB\r\r"  # HumanSize: 4 digits
    assert sending_line(1_234_567) == f"Sending build context to Docker daemon  {human_size(1_234_567, 4)}\r\r"
    created = "2026-01-02T03:04:05.123456789Z"  # nanoseconds, as Go writes them
    assert parse_time(created) == pytest.approx(1767323045.123456789)
    # go-units rounds hours with Duration.Round (halves away from zero): 2.5h is "3 hours"
    assert ago("2026-01-02T03:04:05Z", now=1767323045 + 9000) == "3 hours ago"
    assert ago(created, now=1767323045 + 59.5) == "59 seconds ago"
    assert [ago(""), ago("yesterday"), ago(None)] == ["N/A", "N/A", "N/A"]
    config = {"history": [{"created": "2026-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop) ADD x /"}]}
    row = history_rows(config, "sha256:" + "a" * 64, [1_980_000])[0]
    assert row[3] == "1.98MB"  # HumanSizeWithPrecision 3
