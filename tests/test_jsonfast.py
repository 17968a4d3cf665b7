"""strata.jsonfast reads and writes exactly as the json package does: values, text and errors."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from strata import jsonfast


def _value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "float", "const"] + (["list", "dict", "tuple"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(rng.choice('ab"\\/\n\t\x00\x1f\u00e9\u2028\ud800😀 <>&') for _ in range(rng.randint(0, 6)))
    if kind == "int":
        return rng.choice([0, -1, 7, 2**70, -(2**63)])
    if kind == "float":
        return rng.choice([0.0, -0.0, 1.5, 1e300, -2.5e-308, 0.1, math.inf, -math.inf])
    if kind == "const":
        return rng.choice([None, True, False])
    items = [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == "list":
        return items
    if kind == "tuple":
        return tuple(items)
    return {f"k{i}\u00e9\"": v for i, v in enumerate(items)}


def _outcome(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The value (as its repr: NaN equals nothing) or the error."""
    try:
        return "ok", repr(call(*args, **kwargs))
    except (ValueError, TypeError, RecursionError) as e:
        return type(e).__name__, str(e)


def test_text_reads_as_json_reads_it() -> None:
    rng = random.Random(3)
    texts = [json.dumps(_value(rng), ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 2])) for _ in range(400)]
    texts += [" \n{}\t", '{"a": 1} x', "", "   ", "[1,]", '{"a" 1}', "\ufeff{}", "NaN", "-Infinity", "[Infinity]",
              '"\\ud800"', '"a\nb"', "1e999", "01", "[1, 2", '{"a": {"b": [true, false, null]}}', "\x0c{}"]
    for text in texts:
        assert _outcome(jsonfast.loads, text) == _outcome(json.loads, text), repr(text)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                                      "utf-32-le", "utf-32-be"])
def test_bytes_read_in_the_encoding_json_detects(encoding: str) -> None:
    for doc in ('{"a": "\u00e9😀"}', "[1]", "7", "{}", '"x"', "12"):
        raw = doc.encode(encoding)
        assert jsonfast.detect_encoding(raw) == json.detect_encoding(raw)
        assert _outcome(jsonfast.loads, raw) == _outcome(json.loads, raw)
    for raw in (b"", b"\x00", b"\xff\xfe\x00", b"\x80abc", b"{\x00\x00\x00"):
        assert jsonfast.detect_encoding(raw) == json.detect_encoding(raw)
        assert _outcome(jsonfast.loads, raw) == _outcome(json.loads, raw)


def test_nan_reads_as_nan() -> None:
    assert math.isnan(jsonfast.loads("NaN")) and jsonfast.loads("[-Infinity]") == [-math.inf]


def test_values_write_as_json_writes_them() -> None:
    rng = random.Random(5)
    values = [_value(rng) for _ in range(400)]
    values += [{1: "a"}, {None: 1, True: 2, 1.5: 3}, {(1, 2): 3}, [object()], {"a": {1, 2}}, float("nan"), [],
               {}, (), [[]], {"a": {}}, "\u2028", 2**100]
    for value in values:
        want = _outcome(json.dumps, value, indent=4, ensure_ascii=False)
        if want[0] == "TypeError":  # the message names the object: compare the kind only
            with pytest.raises(TypeError):
                jsonfast.dumps_indented(value)
        else:
            assert _outcome(jsonfast.dumps_indented, value) == want, repr(value)


def test_a_string_is_quoted_as_json_quotes_it() -> None:
    for text in ["", "a b", 'say "hi"', "tab\there", "\x00\x7f", "\u00e9\u2028😀", "\ud800", "</script>"]:
        assert jsonfast.quote(text) == json.dumps(text, ensure_ascii=False)
