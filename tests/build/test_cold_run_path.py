"""A cold build's RUN step under ``--network none`` loads only what its container uses (issue 10: the
imports before and during the first step were a good part of a cold build's CPU). Each module below
was on that path and is not needed there: the network store and netavark (a ``none`` container has no
endpoint to set up), the volumes (a step has none), the attach hub and socket (its output goes to the
build), the json-file log, the health probes, the terminal helpers, the links, ``secrets`` (hashlib's
OpenSSL, hmac), zstandard and platform (a layer is a plain tar) and the dataclass machinery (inspect,
ast, dis, tokenize) and typing (the build and archive modules name their types for the
checker only). The build runs in a fresh interpreter, as the ``strata`` console script does.

Also here: what the lightweight paths replace gives the same answers as what they skip (the predefined
network's ID as the network store finds it, and Network's fields as the light reader knows them)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from build_helpers import Strata

from strata.container.network import endpoints
from strata.container.network.networks import Network, NetworkStore

SRC = Path(__file__).resolve().parents[2] / "src"

DRIVER = """
import sys
from strata.cli.main import main
rc = main(sys.argv[2:])
sys.stdout.flush()
import json
with open(sys.argv[1], "w") as f:
    json.dump({"rc": rc, "modules": sorted(sys.modules)}, f)
"""

NOT_ON_THE_RUN_PATH = (
    "socket", "secrets", "hmac", "zstandard", "platform", "dataclasses", "inspect", "ast", "dis", "tokenize",
    "termios", "strata.container.network.networks", "strata.container.network.netavark",
    "strata.container.network.allocate", "strata.container.network.ipam", "strata.container.network.ports",
    "strata.container.network.netns", "strata.container.network.release", "strata.container.volumes",
    "strata.container.attach", "strata.container.logs", "strata.container.health", "strata.container.tty",
    "strata.container.links", "datetime", "typing", "strata.archive.apply",
)  # fmt: skip


def test_a_cold_run_step_loads_only_what_its_container_uses(
    strata: Strata, busybox: str, tmp_path: Path, root: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "src").mkdir()
    (ctx / "src" / "a.txt").write_text("copied\n")
    (ctx / "Dockerfile").write_text(  # the bench's shape: RUN, WORKDIR, COPY, COPY --from (build.copy loaded)
        f"FROM {busybox} AS first\nRUN echo ran > /ran && echo said\nWORKDIR /src\nCOPY src/ ./\n"
        f"FROM {busybox}\nCOPY --from=first /ran /src/a.txt /\nCMD [\"cat\", \"/ran\", \"/a.txt\"]\n"
    )
    strata("network", "ls")  # the store's predefined networks made (a store's first container makes them too)
    strata("run", "--rm", "--network", "none", busybox, "true")  # the base unpacked (archive.apply), as the bench's
    report = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(SRC), "STRATA_ROOT": str(root)}
    res = subprocess.run(
        [sys.executable, "-c", DRIVER, str(report), "build", "--no-cache", "--network", "none",
         "-t", "coldrunpath/t:1", str(ctx)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    data = json.loads(report.read_text())
    assert data["rc"] == 0, res.stderr
    assert "said\n" in res.stdout  # the step's output reached the build's (through the monitor's sink)
    modules = set(data["modules"])
    assert {"strata.container.lifecycle", "strata.container.monitor", "strata.archive.tarwriter",
            "strata.build.copy"} <= modules  # fmt: skip
    assert sorted(m for m in NOT_ON_THE_RUN_PATH if m in modules) == []
    assert strata("run", "--rm", "coldrunpath/t:1").stdout == "ran\ncopied\n"
    assert strata("ps", "-aq").stdout == ""  # the step's container is gone
    strata("rmi", "coldrunpath/t:1")


def test_a_none_container_records_the_network_id_the_store_has(strata: Strata, busybox: str, root: Path) -> None:
    from strata.container.records import ContainerStore

    cid = strata("create", "--network", "none", busybox, "true").stdout.strip()
    with ContainerStore(root) as containers:
        record = containers.get(cid)
    assert record.networks["none"]["NetworkID"] == NetworkStore(root).get("none").id
    assert strata("start", "-a", cid).returncode == 0


def test_network_fields_are_what_the_light_reader_knows() -> None:
    assert {f.name for f in dataclasses.fields(Network)} == endpoints.NETWORK_FIELDS


def test_predefined_id_answers_as_the_network_store(tmp_path: Path) -> None:
    assert endpoints._predefined_id(tmp_path, "none") is None  # no networks yet: the store makes them
    store = NetworkStore(tmp_path)
    for name in ("none", "host"):
        expected = store.get(name).id  # the store made the predefined networks
        assert endpoints._predefined_id(tmp_path, name) == expected
    user = Network(name="mine", id="f" * 64, driver="bridge", created=0.0, subnet="10.9.0.0/24")
    store.save(user)
    assert endpoints._predefined_id(tmp_path, "none") == store.get("none").id
    (tmp_path / "networks" / "odd.json").write_text(json.dumps({"name": "x", "id": "y", "driver": "null",
                                                                 "created": 0, "unknown": 1}))
    assert endpoints._predefined_id(tmp_path, "none") is None  # a file the store would not load: it answers
    (tmp_path / "networks" / "odd.json").unlink()
    (tmp_path / "networks" / f"{store.get('bridge').id}.json").unlink()
    assert endpoints._predefined_id(tmp_path, "host") is None  # the store would make the bridge first


@pytest.mark.parametrize("mode", ["none", "host"])
def test_plan_networks_of_a_predefined_network_is_the_stores(tmp_path: Path, mode: str) -> None:
    from strata.container.records import ContainerStore

    store = NetworkStore(tmp_path)
    with ContainerStore(tmp_path) as containers:
        planned = endpoints.plan_networks(tmp_path, containers, mode, "c" * 64, "", [])
    assert planned == {mode: endpoints.endpoint_settings(store.get(mode))}


@pytest.mark.parametrize("ns", [0, 1, 1_700_000_000_123_456_789, 951_782_400_500_000_000, 4_102_444_800_000_000_000,
                                253_402_300_799_999_999_999, -1_000_000_000])
def test_rfc3339_nano_is_datetimes(ns: int) -> None:
    """image.config's timestamps (every committed step's ``created``) come from ``time`` now: as datetime made them."""
    from datetime import UTC, datetime

    from strata.image.config import rfc3339_nano

    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    assert rfc3339_nano(ns) == (f"{base}.{digits}Z" if digits else f"{base}Z")


def test_the_build_program_leaves_its_databases_checkpoint_to_its_watchdog(
    strata: Strata, busybox: str, tmp_path: Path, root: Path
) -> None:
    """A build's last close of the store and the container records checkpointed their WAL (fsyncs, an
    unlink) on its critical path; a build with a step container (and so a watchdog) now exits without it,
    and the watchdog does it once the build is gone. A build without one closes them itself."""
    import sqlite3
    import time

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {busybox}\nRUN echo ran > /ran\n")
    image_id = strata("build", "-q", "--network", "none", "-t", "coldrunpath/wal:1", str(ctx)).stdout.strip()
    deadline = time.monotonic() + 60  # the watchdog is a process of its own: late on a loaded machine
    while any((root / f"{db}-wal").exists() for db in ("strata.db", "containers.db")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [db for db in ("strata.db", "containers.db") if (root / f"{db}-wal").exists()] == []  # checkpointed
    for db in ("strata.db", "containers.db"):
        conn = sqlite3.connect(root / db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()
    assert strata("images", "-q", "--no-trunc", "coldrunpath/wal:1").stdout.strip() == image_id
    (ctx / "Dockerfile").write_text(f"FROM {busybox}\nLABEL only=metadata\n")
    strata("build", "-q", "-t", "coldrunpath/wal:2", str(ctx))  # no step container: no watchdog
    assert not (root / "strata.db-wal").exists()  # closed (and so checkpointed) by the build itself
    strata("rmi", "coldrunpath/wal:1", "coldrunpath/wal:2")


def test_in_process_closes_close(tmp_path: Path) -> None:
    """Only the program (strata.cli.main.run) leaves the databases open: main() called in-process does not."""
    from strata.cli import main as cli_main
    from strata.store import db

    assert cli_main._PROGRAM == [False]
    conn = db.connect(tmp_path / "strata.db")
    db.close(conn)
    with pytest.raises(Exception, match="closed"):
        conn.execute("SELECT 1")
