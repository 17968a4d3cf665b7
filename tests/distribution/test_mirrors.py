"""Docker Hub mirrors (``registry-mirrors``): a mirror that is down, lacks a blob or keeps dropping the
connection mid-blob is passed over for the next one, the download resuming there with ``Range``."""

from __future__ import annotations

import os

import pytest

from strata.digest import digest_bytes

from .conftest import StrataRun, config_json, gz_layer
from .faultserver import FaultRegistry

_BIG = gz_layer({"bin/big": os.urandom(600_000)}, 0)
_SMALL = gz_layer({"etc/small": b"mirror"})


def _serve_image(reg: FaultRegistry) -> str:
    """The same image on every mirror; returns its big layer's digest."""
    (big, big_diff), (small, small_diff) = _BIG, _SMALL
    reg.manifest_for("library/img", "1", config_json([big_diff, small_diff]), [big, small])
    return str(digest_bytes(big))


@pytest.fixture
def second_mirror() -> FaultRegistry:
    reg = FaultRegistry().start()
    yield reg  # type: ignore[misc]
    reg.stop()


@pytest.mark.parametrize("fault", ["drop_always", "missing"])
def test_pull_falls_over_to_the_next_mirror(
    fault_registry: FaultRegistry, second_mirror: FaultRegistry, strata: StrataRun, fault: str
) -> None:
    first, second = fault_registry, second_mirror
    big = _serve_image(first)
    _serve_image(second)
    if fault == "missing":
        del first.blobs[big]
    else:
        first.faults[big] = fault
    from peers import free_port

    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: passed over at connect time
    strata.env["STRATA_REGISTRY_MIRRORS"] = f"{down},http://{first.host},http://{second.host}"
    res = strata("pull", "img:1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[0] == "1: Pulling from library/img"
    assert "Status: Downloaded newer image for img:1" in res.stdout
    assert res.stdout.strip().splitlines()[-1] == "docker.io/library/img:1"

    got_first = [h for m, p, h in first.requests if m == "GET" and p.endswith(big)]
    got_second = [h for m, p, h in second.requests if m == "GET" and p.endswith(big)]
    assert got_first and got_second
    if fault == "drop_always":
        # the bytes read from the first mirror are kept: the second is asked for the rest only
        assert got_second[0].get("Range", "").startswith("bytes=") and got_second[0]["Range"] != "bytes=0-"
    # the manifest came from the first mirror that answered; nothing else was asked of the second
    assert not [p for m, p, _ in second.requests if "/manifests/" in p]
    from strata.engine import Engine

    engine = Engine.open(strata.root)
    try:
        assert len(engine.summaries()) == 1
    finally:
        engine.close()


def test_all_mirrors_failing_is_an_error(fault_registry: FaultRegistry, strata: StrataRun) -> None:
    big = _serve_image(fault_registry)
    del fault_registry.blobs[big]
    strata.env["STRATA_REGISTRY_MIRRORS"] = f"http://{fault_registry.host}"
    # the last resort is Docker Hub itself, which this machine cannot reach: a clear error, nothing stored
    res = strata("pull", "img:1", timeout=120)
    assert res.returncode == 1
    assert res.stderr.startswith('Error: Get "https://registry-1.docker.io/v2/": '), res.stderr
    assert strata("images", "-q", check=True).stdout == ""
