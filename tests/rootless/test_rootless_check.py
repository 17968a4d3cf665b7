"""The one rootless check (``strata.rootless.is_rootless``): the store's modes and container networking
both ask it, and nothing else spells it out again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strata.container.network.connect import connect
from strata.container.network.networks import Network
from strata.container.records import Container, ContainerStore
from strata.errors import StrataError
from strata.rootless import ENV_MARKER, is_rootless
from strata.store.root import dir_mode

SRC = Path(__file__).resolve().parents[2] / "src" / "strata"


@pytest.mark.parametrize(("euid", "marker", "rootless"), [(0, False, False), (0, True, True), (1000, False, True)])
def test_a_user_or_root_of_the_namespace_is_rootless(monkeypatch: pytest.MonkeyPatch, euid: int, marker: bool,
                                                     rootless: bool) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    if marker:
        monkeypatch.setenv(ENV_MARKER, "1")
    else:
        monkeypatch.delenv(ENV_MARKER, raising=False)
    assert is_rootless() is rootless
    assert (dir_mode(), dir_mode("tmp")) == ((0o700 if rootless else 0o710), 0o700)


def test_rootless_networking_asks_the_same_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The networking side asks the same check: inside the namespace (the marker set, euid 0), a container
    on the default network is pasta's, so connecting it to a user-defined network is refused in Podman's
    words before anything is recorded or set up (user-defined networks themselves go to the rootless
    network namespace: tests/rootless/test_rootless_usernet.py)."""
    monkeypatch.setenv(ENV_MARKER, "1")
    c = Container(id="a" * 64, name="p", image_id="sha256:" + "b" * 64, image_name="x", created=0.0, path="sh",
                  args=[], host_config={"NetworkMode": "default"}, networks={"bridge": {}})
    net = Network(name="mynet", id="c" * 64, driver="bridge", created=0.0, subnet="10.5.0.0/24", gateway="10.5.0.1")
    store = ContainerStore(tmp_path)
    with pytest.raises(StrataError, match=r'^"pasta" is not supported: invalid network mode$'):
        connect(store, c, net, "", [])
    assert store.all() == [] and not (tmp_path / "networks").exists()  # nothing was recorded or set up


def test_the_check_is_written_once() -> None:
    """The marker's name and the combined check (not root, or the namespace's root) are spelled only
    in ``strata.rootless``; the CLI's ``geteuid() != 0`` alone (re-enter the namespace?) is another question."""
    spelled = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                     if '"_STRATA_USERNS"' in p.read_text() or "geteuid() != 0 or" in p.read_text())
    assert spelled == ["rootless/__init__.py"]
