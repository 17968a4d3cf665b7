"""A build reads and writes its JSON (cache keys, the sum memo, exec-form instructions, history comments)
through ``strata.jsonfast`` instead of the ``json`` package (whose import, with its expressions, was a
twentieth of a cached rebuild). The values must be ``json``'s exactly: a cache key that changed would
rebuild every step of every existing cache."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strata import jsonfast

VALUES: list[Any] = [
    ["", {"Cmd": ["/bin/sh", "-c", "#(nop) ", 'LABEL a=é\u2028"q"\\'], "Env": ["A=1"], "b": None, "a": 1.5,
          "z": True, "n": [1, 2.0, -0.0, 1e100, 10**30]}],
    "x\u00e9\x00", {1: 2, None: 3, False: 4, 2.5: "x"}, {"k": float("inf")}, [], {}, ("t", 1),
    {"nested": {"b": {"d": 1, "c": 2}, "a": []}}, {"a": object()}, [float("nan")],
]  # fmt: skip
OPTIONS: list[dict[str, Any]] = [{}, {"sort_keys": True, "separators": (",", ":")}, {"separators": (",", ":")}]


def _either(f: Any, value: Any, options: dict[str, Any]) -> str:
    try:
        return str(f(value, **options))
    except Exception as e:  # the same error type either way
        return type(e).__name__


@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_dumps_is_jsons(value: Any, options: dict[str, Any]) -> None:
    assert _either(jsonfast.dumps, value, options) == _either(json.dumps, value, options)


@pytest.mark.parametrize("text", ['["a", "b"] trailing', '["a"]', "[1,", "nope", '["a\\u0041"]x', "[]", "[NaN]", ""])
def test_raw_decode_is_jsons(text: str) -> None:
    def decode(f: Any) -> str:
        try:
            return repr(f(text))
        except ValueError:
            return "ValueError"

    assert decode(jsonfast.raw_decode) == decode(json.JSONDecoder().raw_decode)
