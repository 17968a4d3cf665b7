"""``--cache-from`` with an image whose history says more layers than it has, or holds entries that are no
JSON objects (a broken or hostile image): no cache hit from those entries, never a traceback (the lookup
indexed the diff IDs by the history's count and raised IndexError / AttributeError)."""

from __future__ import annotations

from strata.build.cachefrom import _history, _layer_at


def test_a_history_longer_than_the_layers_matches_nothing() -> None:
    doc = {"history": [{"created_by": "ADD a /"}, {"created_by": "RUN x"}, {"created_by": "CMD", "empty_layer": True}],
           "rootfs": {"diff_ids": ["sha256:" + "1" * 64]}}
    assert _layer_at(doc, 0) == "sha256:" + "1" * 64
    assert _layer_at(doc, 1) == ""  # no second layer: matches no step's diff ID
    assert _layer_at(doc, 2) is None  # an empty layer, as the history says
    assert _layer_at(doc, 7) == ""


def test_history_entries_that_are_not_objects() -> None:
    doc = {"history": ["junk", None, {"created_by": "RUN y"}], "rootfs": {"diff_ids": ["sha256:" + "2" * 64]}}
    assert _history(doc) == [{}, {}, {"created_by": "RUN y"}]
    assert _layer_at(doc, 0) == "sha256:" + "2" * 64
    assert _layer_at(doc, 2) == ""
