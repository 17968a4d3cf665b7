"""``store.tagread.full_name`` (ps's engine-free IMAGE column) agrees with the reference grammar on every
form it decides, and leaves the rest (None) to it."""

from __future__ import annotations

import pytest

from strata.reference import Reference, parse_any
from strata.store.tagread import full_name

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("name", [
    "busybox", "busybox:1", "me/app", "me/app:2", "docker.io/busybox", "docker.io/library/busybox:3",
    "docker.io/me/app:4", "localhost/x", "localhost:5000/x", "localhost:5000/a/b:c", "127.0.0.1:5000/x:1",
    "registry.example.com/team/app:v1.2", f"busybox@{DIGEST}", f"localhost:5000/x@{DIGEST}",
    f"busybox:1@{DIGEST}", "a_b.c-d/e__f:tag_1",
])
def test_full_name_agrees_with_the_grammar(name: str) -> None:
    ref = parse_any(name)
    assert isinstance(ref, Reference)
    if ref.digest is not None and ref.tag is not None:
        ref = ref.without_tag()
    assert full_name(name) == ref.tag_name_only().string()


@pytest.mark.parametrize("name", ["Busybox", "index.docker.io/busybox", "x@sha256:12", "", " busybox"])
def test_what_it_does_not_decide_goes_to_the_grammar(name: str) -> None:
    assert full_name(name) is None
