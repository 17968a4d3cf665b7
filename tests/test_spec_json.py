"""The one depth-bounded JSON loader (strata.image.spec) that client and server parse manifests with."""

from __future__ import annotations

import json

import pytest

from strata.errors import InvalidArchive
from strata.image.spec import MAX_JSON_DEPTH, ImageConfig, Index, Manifest, load_json, parse_manifest_or_index

CFG = {"mediaType": "application/vnd.oci.image.config.v1+json",
       "digest": "sha256:" + "a" * 64, "size": 2}


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 3000, 300_000])
@pytest.mark.parametrize("parse", [
    lambda raw: Manifest.parse(raw),
    lambda raw: Index.parse(raw),
    lambda raw: parse_manifest_or_index(raw),
    lambda raw: ImageConfig.parse(raw),
])
def test_client_parsers_refuse_deep_nesting(parse: object, depth: int) -> None:
    """A hostile registry's deeply nested manifest, index or config is a clean error, not a RecursionError."""
    raw = ('{"schemaVersion":2,"config":' + json.dumps(CFG) + ',"layers":[],"manifests":[],'
           '"rootfs":{"diff_ids":[]},"annotations":{"a":' + _deep(depth) + "}}").encode()
    assert callable(parse)
    with pytest.raises(InvalidArchive, match="nested"):
        parse(raw)


def test_limit_is_exact_and_strings_do_not_count() -> None:
    assert load_json(_deep(MAX_JSON_DEPTH), "x") is not None
    with pytest.raises(InvalidArchive, match=f"nested more than {MAX_JSON_DEPTH} levels"):
        load_json(_deep(MAX_JSON_DEPTH + 1), "x")
    tricky = json.dumps({"s": "[{" * 10_000 + '\\"[', "t": ["]"] * 3})
    assert load_json(tricky.encode(), "x")["t"] == ["]", "]", "]"]
    assert load_json(_deep(10), "x", max_depth=10) == [[[[[[[[[[]]]]]]]]]]
    with pytest.raises(InvalidArchive):
        load_json(_deep(11), "x", max_depth=10)


def test_other_encodings_are_bounded_too() -> None:
    """json.loads takes UTF-16/32 bytes; the bound applies to the decoded text, whatever the encoding."""
    for enc in ("utf-16-le", "utf-16-be", "utf-32"):
        with pytest.raises(InvalidArchive, match="nested"):
            load_json(_deep(5000).encode(enc), "manifest")
        assert load_json('{"a":"\u225b["}'.encode(enc), "manifest") == {"a": "\u225b["}


def test_a_valid_manifest_still_parses() -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": CFG, "layers": [CFG]}).encode()
    m = Manifest.parse(raw)
    assert m.config.size == 2 and len(m.layers) == 1 and m.raw == raw
    with pytest.raises(InvalidArchive, match="invalid manifest"):
        Manifest.parse(b"{not json")
