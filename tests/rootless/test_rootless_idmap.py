"""/etc/subuid parsing and the mapping built from it."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from strata.rootless import idmap
from strata.rootless.idmap import IDMap, RootlessError, mapping_args, read_ranges


def test_ranges_by_name_or_uid_in_order_malformed_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "subuid"
    path.write_text(
        "alice:100000:65536\nbob:165536:65536\n1001:300000:10\nalice:x:1\nalice:5\nalice:400000:0\n"
    )
    assert read_ranges(path, "alice", 1001) == [(100000, 65536), (300000, 10)]
    assert read_ranges(path, "carol", 1002) == []
    assert read_ranges(tmp_path / "missing", "alice", 1001) == []


def test_full_mapping_root_is_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = pwd.getpwuid(os.getuid()).pw_name
    (tmp_path / "subuid").write_text(f"{name}:100000:65536\n{name}:200000:5\n")
    (tmp_path / "subgid").write_text(f"{name}:300000:65536\n")
    monkeypatch.setattr(idmap, "SUBUID", tmp_path / "subuid")
    monkeypatch.setattr(idmap, "SUBGID", tmp_path / "subgid")
    maps = idmap.user_maps(os.getuid(), 4242)
    assert maps.uids == (IDMap(0, os.getuid(), 1), IDMap(1, 100000, 65536), IDMap(65537, 200000, 5))
    assert maps.gids == (IDMap(0, 4242, 1), IDMap(1, 300000, 65536))
    assert mapping_args(maps.gids) == ["0", "4242", "1", "1", "300000", "65536"]
    (tmp_path / "subgid").write_text("")
    with pytest.raises(
        RootlessError, match=f'no subgid ranges found for user "{name}" in .*usermod --add-subuids'
    ):
        idmap.user_maps(os.getuid(), 4242)


def test_missing_newuidmap_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RootlessError, match=r"newuidmap not found: install the uidmap package"):
        idmap.user_maps()
