"""The S3 client's timestamp parser gives what botocore's own would, for every form S3 sends."""

from __future__ import annotations

import botocore.utils
import pytest

from strata.server.storage.s3objects import _timestamp


@pytest.mark.parametrize("value", [
    "Mon, 30 Nov 2026 21:30:00 GMT",  # Last-Modified
    "2026-11-30T21:30:00.123Z",  # ListObjectsV2 (radosgw, AWS)
    "2026-11-30T21:30:00Z",
    "2026-11-30T21:30:00.000+00:00",
    "2026-11-30T21:30:00",  # no zone: naive, as botocore reads it
    "1700000000",  # epoch seconds: left to botocore
])  # fmt: skip
def test_timestamps_parse_as_botocore_does(value: str) -> None:
    ours, theirs = _timestamp(value), botocore.utils.parse_timestamp(value)
    assert ours == theirs and ours.utcoffset() == theirs.utcoffset()
    assert ours.timestamp() == theirs.timestamp()
