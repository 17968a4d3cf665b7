"""The fix named to a user without subordinate ids is a range no other user has: a suggested range that
overlaps another user's would let the two users' containers own each other's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.rootless import idmap
from strata.rootless.idmap import RootlessError


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setattr(idmap, "SUBUID", tmp_path / "subuid")
    monkeypatch.setattr(idmap, "SUBGID", tmp_path / "subgid")
    return tmp_path / "subuid", tmp_path / "subgid"


def test_the_first_free_block_past_every_users_ranges(files: tuple[Path, Path]) -> None:
    subuid, subgid = files
    assert idmap.free_range() == 100000  # neither file
    subuid.write_text("alice:100000:65536\nbad line\nbob:x:1\n")
    subgid.write_text("alice:100000:65536\ncarol:165536:70000\n")
    assert idmap.free_range() == 235536  # past alice's uids and carol's gids
    subuid.write_text("dave:500000:65536\n")
    subgid.write_text("")
    assert idmap.free_range() == 100000  # a gap below a later range is free
    assert idmap.free_range(count=500000) == 565536  # not when it is too small


def test_the_message_names_a_free_range(files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    subuid, subgid = files
    subuid.write_text("someone:100000:65536\n")
    subgid.write_text("someone:100000:65536\n")
    monkeypatch.setattr(idmap, "_user_name", lambda uid: "nosub")
    with pytest.raises(RootlessError) as caught:
        idmap.user_maps(4321, 4321)
    assert str(caught.value) == ('no subuid ranges found for user "nosub" in ' + str(subuid) + ": add one with: "
                                 "usermod --add-subuids 165536-231071 --add-subgids 165536-231071 nosub")  # fmt: skip
