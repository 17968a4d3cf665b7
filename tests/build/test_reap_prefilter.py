"""Every build first removes the step containers of builds that died (``build.watchdog.reap_orphans``);
on a store with many containers it reads only the records that carry the builder's label, and still
removes exactly the orphans: a record that merely mentions the label elsewhere, or whose builder is
alive, stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from strata.build.watchdog import BUILDER_LABEL, reap_orphans
from strata.container.records import Container, ContainerStore, new_id, process_start


def _add(store: ContainerStore, name: str, labels: dict[str, str], env: list[str] | None = None) -> None:
    store.add(Container(id=new_id(), name=name, image_id="sha256:" + "a" * 64, image_name="x", created=time.time(),
                        path="/bin/sh", args=[], state="created", config={"Env": env or [], "Labels": labels},
                        host_config={}))  # fmt: skip


def _every_record() -> list[Container]:
    raise AssertionError("reap_orphans read every container record")


def test_only_labelled_records_are_read_and_only_orphans_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    me = os.getpid()
    with ContainerStore(tmp_path / "store") as store:
        _add(store, "orphan", {BUILDER_LABEL: f"{me}:1"})  # the PID now runs another process: its builder died
        _add(store, "running", {BUILDER_LABEL: f"{me}:{process_start(me)}"})  # this process: a live build
        _add(store, "mention", {"note": BUILDER_LABEL}, [BUILDER_LABEL, f'X="{BUILDER_LABEL}"'])
        for i in range(50):
            _add(store, f"plain{i}", {"a": "b"})
        candidates = {c.name for c in store.containing(f'"{BUILDER_LABEL}"')}
        assert {"orphan", "running"} <= candidates
        assert not any(n.startswith("plain") for n in candidates)
        with monkeypatch.context() as m:
            m.setattr(store, "all", _every_record)
            assert reap_orphans(store) == 1
        names = {c.name for c in store.all()}
    assert "orphan" not in names
    assert {"running", "mention", "plain0", "plain49"} <= names
    assert len(names) == 52
