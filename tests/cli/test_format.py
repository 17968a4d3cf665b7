"""Docker's human output: sizes, durations, IDs, ellipsis and tabwriter tables, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strata.cli.format import (
    container_status,
    display_width,
    ellipsis,
    exited_since,
    human_duration,
    human_size,
    render_table,
    short_id,
    tabwrite,
    time_ago,
    truncate,
    up_since,
)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (1, "1B"),
        (12, "12B"),
        (13, "13B"),
        (999, "999B"),
        (1000, "1kB"),
        (1024, "1.02kB"),
        (1500, "1.5kB"),
        (195_000, "195kB"),
        (195_499, "195kB"),
        (999_499, "999kB"),
        (999_999, "1e+03kB"),  # Go's %.3g of 999.999 switches to exponent form, as Docker shows
        (1_000_000, "1MB"),
        (1_234_567, "1.23MB"),
        (1_978_000, "1.98MB"),
        (1_985_000, "1.99MB"),
        (197_000_000, "197MB"),
        (1_200_000_000, "1.2GB"),
        (5_000_000_000_000, "5TB"),
        (7_250_000_000_000_000, "7.25PB"),
        (3 * 10**18, "3EB"),
        (10**27, "1e+03YB"),
        (-5, "-5B"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_human_size_precision_four_as_units_human_size() -> None:
    assert human_size(1_978_123, 4) == "1.978MB"
    assert human_size(2_746_000, 4) == "2.746MB"
    assert human_size(796_000, 4) == "796kB"


MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 30 * DAY
YEAR = 365 * DAY


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "Less than a second"),
        (0, "Less than a second"),
        (0.45, "Less than a second"),
        (0.999, "Less than a second"),
        (1, "1 second"),
        (1.9, "1 second"),
        (2, "2 seconds"),
        (45, "45 seconds"),
        (59, "59 seconds"),
        (59.99, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3 * MINUTE, "3 minutes"),
        (35 * MINUTE + 40, "35 minutes"),
        (59 * MINUTE + 59, "59 minutes"),
        (HOUR, "About an hour"),
        (HOUR + 29 * MINUTE, "About an hour"),
        (HOUR + 30 * MINUTE, "2 hours"),
        (HOUR + 31 * MINUTE, "2 hours"),
        (3 * HOUR + 29 * MINUTE, "3 hours"),
        (3 * HOUR + 31 * MINUTE, "4 hours"),
        (24 * HOUR, "24 hours"),
        (DAY + 12 * HOUR, "36 hours"),
        (47 * HOUR + 29 * MINUTE, "47 hours"),
        (47 * HOUR + 30 * MINUTE, "2 days"),
        (2 * DAY, "2 days"),
        (7 * DAY, "7 days"),
        (13 * DAY + 5 * HOUR, "13 days"),
        (2 * WEEK, "2 weeks"),
        (2 * WEEK + 4 * DAY, "2 weeks"),
        (4 * WEEK + 3 * DAY, "4 weeks"),
        (MONTH, "4 weeks"),
        (MONTH + 2 * WEEK, "6 weeks"),
        (2 * MONTH, "2 months"),
        (3 * MONTH + WEEK, "3 months"),
        (9 * MONTH + 3 * DAY, "9 months"),
        (13 * MONTH, "13 months"),
        (24 * MONTH, "24 months"),
        (24 * MONTH + 2 * WEEK, "2 years"),
        (3 * YEAR + 2 * MONTH, "3 years"),
        (56 * YEAR, "56 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_time_ago() -> None:
    assert time_ago(1000, 1000.3) == "Less than a second ago"
    assert time_ago(1000, 1001) == "1 second ago"
    assert time_ago(1000, 1003) == "3 seconds ago"
    assert time_ago(0, 90) == "About a minute ago"
    then = datetime(2024, 1, 1, tzinfo=UTC)
    now = datetime(2024, 10, 1, tzinfo=UTC)
    assert time_ago(then, now) == "9 months ago"
    assert time_ago(then.timestamp(), now) == "9 months ago"
    import time

    began = time.monotonic()
    got = time_ago(time.time())  # now by default: within a second unless the machine stalled that long
    stalled = int(time.monotonic() - began)
    assert got in ["Less than a second ago", *(f"{n} second{'s' * (n > 1)} ago" for n in range(1, stalled + 1))], got


def test_container_statuses() -> None:
    assert up_since(3) == "Up 3 seconds"
    assert up_since(0.2) == "Up Less than a second"
    assert up_since(2 * HOUR, paused=True) == "Up 2 hours (Paused)"
    assert up_since(5 * MINUTE, health="healthy") == "Up 5 minutes (healthy)"
    assert exited_since(0, 2 * MINUTE) == "Exited (0) 2 minutes ago"
    assert exited_since(137, 1) == "Exited (137) 1 second ago"
    now = 10_000.0
    assert container_status(running=True, started_at=now - 3, finished_at=None, now=now) == "Up 3 seconds"
    assert (
        container_status(running=True, started_at=now - 60, finished_at=None, paused=True, now=now)
        == "Up About a minute (Paused)"
    )
    assert (
        container_status(
            running=True, started_at=now - 60, finished_at=now - 5, exit_code=1, restarting=True, now=now
        )
        == "Restarting (1) 5 seconds ago"
    )
    assert container_status(running=False, started_at=None, finished_at=None, now=now) == "Created"
    assert (
        container_status(running=False, started_at=now - 300, finished_at=now - 120, exit_code=2, now=now)
        == "Exited (2) 2 minutes ago"
    )
    assert container_status(running=False, started_at=1, finished_at=2, dead=True, now=now) == "Dead"
    assert (
        container_status(running=False, started_at=1, finished_at=2, removing=True, now=now)
        == "Removal In Progress"
    )
    assert container_status(running=False, started_at=now - 1, finished_at=None, now=now) == ""


@pytest.mark.parametrize(
    ("value", "short"),
    [
        ("sha256:4b12b65f549ac4db536c27127b4b71ef57ecba078300f384561b2c996b4174ae", "4b12b65f549a"),
        ("4b12b65f549ac4db536c27127b4b71ef57ecba078300f384561b2c996b4174ae", "4b12b65f549a"),
        ("sha512:" + "ab" * 64, "abababababab"),
        ("abc", "abc"),
        ("", ""),
    ],
)
def test_short_id(value: str, short: str) -> None:
    assert short_id(value) == short


def test_ellipsis() -> None:
    long = "/bin/sh -c #(nop) ADD file:6a6e3fa0ad6c8fda1b4e5f4d5f0e3a3b in / "
    cut = ellipsis(long, 45)
    assert len(cut) == 45 and cut.endswith("\u2026")
    assert cut == long[:44] + "\u2026"
    assert ellipsis("sh -c echo test_second! >> second", 45) == "sh -c echo test_second! >> second"
    exact = "x" * 45
    assert ellipsis(exact, 45) == exact
    assert ellipsis("x" * 46, 45) == "x" * 44 + "\u2026"
    assert ellipsis("abc", 1) == "a"
    assert ellipsis("abc", 0) == ""
    assert ellipsis("abc", -1) == ""
    assert ellipsis("", 5) == ""
    # Wide characters count two columns.
    assert display_width("日本語") == 6
    assert ellipsis("日本語テキスト", 7) == "日本語\u2026"
    assert ellipsis("日本語", 6) == "日本語"
    assert ellipsis("héllo wörld", 6) == "héllo\u2026"
    assert truncate is ellipsis


# --- tables: reproduce the transcripts in /work/shared/reference/docker/ byte for byte ----------

IMAGES_PUSH = (
    "REPOSITORY                               TAG       IMAGE ID       CREATED                  SIZE\n"
    "localhost:5000/alicek107/my-image-name   0.0       4b12b65f549a   Less than a second ago   1.98MB\n"
    "my-image-name                            0.0       4b12b65f549a   Less than a second ago   1.98MB\n"
    "myimage                                  0.0       f1f4d94ee505   1 second ago             1.98MB\n"
    "myimage                                  0.1       3a9f10baaebd   1 second ago             1.98MB\n"
    "myimage                                  0.2       c0a46f290ded   1 second ago             1.98MB\n"
    "ubuntu                                   14.04     7caf0cf03434   3 seconds ago            1.98MB\n"
)

IMAGE_HEADERS = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]


def test_images_table_from_push_transcript() -> None:
    rows = [
        ["localhost:5000/alicek107/my-image-name", "0.0", "4b12b65f549a", "Less than a second ago", "1.98MB"],
        ["my-image-name", "0.0", "4b12b65f549a", "Less than a second ago", "1.98MB"],
        ["myimage", "0.0", "f1f4d94ee505", "1 second ago", "1.98MB"],
        ["myimage", "0.1", "3a9f10baaebd", "1 second ago", "1.98MB"],
        ["myimage", "0.2", "c0a46f290ded", "1 second ago", "1.98MB"],
        ["ubuntu", "14.04", "7caf0cf03434", "3 seconds ago", "1.98MB"],
    ]
    assert render_table(IMAGE_HEADERS, rows) == IMAGES_PUSH


def test_images_table_built_from_raw_values() -> None:
    now = 1_700_000_000
    rows = [
        [
            "my-image-name",
            "latest",
            short_id("sha256:7caf0cf03434" + "0" * 52),
            time_ago(now - 1, now),
            human_size(1_978_000),
        ]
    ]
    assert render_table(IMAGE_HEADERS, rows) == (
        "REPOSITORY      TAG       IMAGE ID       CREATED        SIZE\n"
        "my-image-name   latest    7caf0cf03434   1 second ago   1.98MB\n"
    )


def test_images_digests_table() -> None:
    dgst = "sha256:5e2c55f9699b9a36a90cb0e0015a928dd6759c5669532205ca65fc6af291ceb7"
    headers = ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    rows = [
        [
            "localhost:5000/alicek107/my-image-name",
            "0.0",
            dgst,
            "4b12b65f549a",
            "Less than a second ago",
            "1.98MB",
        ],
        ["myimage", "0.0", "<none>", "f1f4d94ee505", "1 second ago", "1.98MB"],
        ["ubuntu", "14.04", "<none>", "7caf0cf03434", "3 seconds ago", "1.98MB"],
    ]
    assert render_table(headers, rows) == (
        "REPOSITORY                               TAG       DIGEST                                                                    IMAGE ID       CREATED                  SIZE\n"
        "localhost:5000/alicek107/my-image-name   0.0       sha256:5e2c55f9699b9a36a90cb0e0015a928dd6759c5669532205ca65fc6af291ceb7   4b12b65f549a   Less than a second ago   1.98MB\n"
        "myimage                                  0.0       <none>                                                                    f1f4d94ee505   1 second ago             1.98MB\n"
        "ubuntu                                   14.04     <none>                                                                    7caf0cf03434   3 seconds ago            1.98MB\n"
    )


HISTORY_HEADERS = ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]


def test_history_tables() -> None:
    rows = [
        [
            "e5d028e21bcc",
            "Less than a second ago",
            "sh -c echo test_second! >> second",
            human_size(13),
            "my second commit",
        ],
        [
            "76c8f96dabdb",
            "1 second ago",
            "sh -c echo test_first! >> first",
            human_size(12),
            "my first commit",
        ],
        ["7caf0cf03434", "1 second ago", "", "1.98MB", "Imported from -"],
    ]
    assert render_table(HISTORY_HEADERS, rows) == (
        "IMAGE          CREATED                  CREATED BY                          SIZE      COMMENT\n"
        "e5d028e21bcc   Less than a second ago   sh -c echo test_second! >> second   13B       my second commit\n"
        "76c8f96dabdb   1 second ago             sh -c echo test_first! >> first     12B       my first commit\n"
        "7caf0cf03434   1 second ago                                                 1.98MB    Imported from -\n"
    )
    rows = [["3a9f10baaebd", "Less than a second ago", "", "1.98MB", "imported it"]]
    assert render_table(HISTORY_HEADERS, rows) == (
        "IMAGE          CREATED                  CREATED BY   SIZE      COMMENT\n"
        "3a9f10baaebd   Less than a second ago                1.98MB    imported it\n"
    )


def test_table_without_rows_and_empty_last_column() -> None:
    assert render_table(IMAGE_HEADERS, []) == "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    assert render_table(["A", "B"], [["x", ""]]) == "A         B\nx         \n"


def test_tabwrite_blocks_follow_go() -> None:
    # A line with fewer cells ends the column block; the next block is aligned on its own.
    text = "a\tbb\tc\naaaaaaaaaaaaa\tb\tc\nsingle line\nx\ty\n"
    assert tabwrite(text) == (
        "a               bb        c\naaaaaaaaaaaaa   b         c\nsingle line\nx         y\n"
    )
    # Text after the last tab is never padded; no trailing newline when the input has none.
    assert tabwrite("a\tb") == "a         b"
    assert tabwrite("") == ""
    assert tabwrite("\n") == "\n"
    # A cell counts characters (runes), not bytes.
    assert tabwrite("日本\tx\n") == "日本        x\n"
    # Custom parameters.
    assert tabwrite("a\tb\nccc\td\n", minwidth=0, padding=1) == "a   b\nccc d\n"
    # Nested blocks: line 2 has no cell in column 1, so lines 1 and 3 align column 1 separately.
    assert tabwrite("a\tbbbbbbbbbbbbbbb\tc\na\tb\nlong-first-cell\tb\tc\tdd\n") == (
        "a                 bbbbbbbbbbbbbbb   c\n"
        "a                 b\n"
        "long-first-cell   b         c         dd\n"
    )
