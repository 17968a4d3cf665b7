"""A container's start looks for the running parents linked to it (Docker's updateParentHosts) among the
records that hold a link only: ``store.containing`` on the compact JSON of a non-empty ``Links`` list. These
tests pin that the first pass finds every record with a link (legacy ``--link`` on the default bridge, an
endpoint's ``--link`` on a user network) and none without, whatever else the records hold."""

from __future__ import annotations

from pathlib import Path

from strata.container import links
from strata.container.records import Container, ContainerStore, new_id


def _record(name: str, host_config: dict[str, object], networks: dict[str, dict[str, object]]) -> Container:
    return Container(id=new_id(), name=name, image_id="sha256:" + "0" * 64, image_name="img", created=0.0,
                     path="sh", args=[], config={"Env": ["Links=[x]"], "Labels": {"Links": "[\"y\"]"}},
                     host_config=host_config, networks=networks, state="running")


def test_the_first_pass_finds_exactly_the_records_with_a_link(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    try:
        with_links = [
            _record("legacy", {"Links": ["/child:/legacy/db"]}, {"bridge": {"Links": None}}),
            _record("endpoint", {"Links": None}, {"net1": {"Links": ["child:db"], "Aliases": None}}),
            _record("both", {"Links": ["/child:/both/c"]}, {"bridge": {}, "net2": {"Links": ["child"]}}),
        ]
        without = [
            _record("none", {"Links": None}, {"bridge": {"Links": None}}),
            _record("empty", {"Links": []}, {"net1": {"Links": []}}),
            _record("absent", {}, {}),
        ]
        for c in (*with_links, *without):
            store.add(c)
        store.update(without[0].id, state="exited")  # an update rewrites the record the same way
        found = {c.name for c in store.containing(links._ANY_LINK)}
        assert found == {c.name for c in with_links}
    finally:
        store.close()
