"""Docker 20.10's legacy v1 image JSON, as its ``docker save`` writes it next to each layer.

Docker decodes the image configuration into its ``image.V1Image`` Go struct and marshals that with
``json.Marshal``: struct field order, ``omitempty`` fields left out when empty, unknown fields dropped,
map keys sorted, ``<``, ``>`` and ``&`` escaped. A layer's v1 ID is the SHA-256 of that struct (without
``id``) as a sorted map plus ``layer_id`` (the layer's chain ID) and ``parent`` (the parent's v1 ID):
moby's ``image/v1.CreateID``. Every layer but the top one gets a bare ``V1Image`` created at the Unix
epoch; the top one gets the image's own."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from strata.digest import Digest
from strata.store.images import chain_ids  # the store's: one definition of Docker's chain IDs

__all__ = ["EPOCH", "V1Layer", "chain_ids", "created_seconds", "go_created", "go_json_string", "v1_layers"]

EPOCH = "1970-01-01T00:00:00Z"
_ZERO_TIME = "0001-01-01T00:00:00Z"
_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def go_json_string(text: str) -> str:
    """A string as Go's ``json.Marshal`` writes it (HTML-escaped; lone surrogates become U+FFFD)."""
    out = ['"']
    for ch in text:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ch in _HTML:
            out.append(_HTML[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_created(value: Any) -> str:
    """A ``created`` time as Go's ``time.Time`` marshals it after parsing: RFC 3339 with the
    fraction's trailing zeros trimmed, a zero offset as ``Z``; absent or unparsable, the zero time."""
    if not isinstance(value, str):
        return _ZERO_TIME
    try:
        parsed = datetime.fromisoformat(_trim_fraction(value).replace("Z", "+00:00"))
    except ValueError:
        return _ZERO_TIME
    if parsed.tzinfo is None:
        return _ZERO_TIME
    digits = _fraction(value)[:9].rstrip("0")  # Go keeps nanoseconds
    head = f"{parsed.year:04d}-{parsed.month:02d}-{parsed.day:02d}T{parsed.hour:02d}:{parsed.minute:02d}:{parsed.second:02d}"
    offset = parsed.utcoffset()
    seconds = int(offset.total_seconds()) if offset else 0
    zone = "Z" if seconds == 0 else f"{'+' if seconds > 0 else '-'}{abs(seconds) // 3600:02d}:{abs(seconds) % 3600 // 60:02d}"
    return f"{head}{'.' + digits if digits else ''}{zone}"


def created_seconds(value: str) -> int:
    """The Unix seconds Docker gives a file made at a Go-formatted time: floored to the second, and the
    Unix epoch for a time before it (moby's ``system.Chtimes``)."""
    seconds = datetime.fromisoformat(_trim_fraction(value).replace("Z", "+00:00")).timestamp() // 1
    return max(int(seconds), 0)


def _fraction(value: str) -> str:
    """The digits after the seconds' point (none without one)."""
    rest = value.partition(".")[2]
    n = 0
    while n < len(rest) and rest[n].isdigit():
        n += 1
    return rest[:n]


def _trim_fraction(value: str) -> str:
    """``fromisoformat`` takes at most 6 fraction digits: Go's times have up to 9."""
    digits = _fraction(value)
    if "." not in value:
        return value
    head, _, rest = value.partition(".")
    return f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"


# --- Go struct marshalling: each field a (JSON name, kind, omitempty) -------------------------------

Field = tuple[str, str, bool]
_HEALTH: tuple[Field, ...] = (
    ("Test", "strings", True), ("Interval", "int", True), ("Timeout", "int", True),
    ("StartPeriod", "int", True), ("Retries", "int", True),
)  # fmt: skip
_CONFIG: tuple[Field, ...] = (
    ("Hostname", "str", False), ("Domainname", "str", False), ("User", "str", False),
    ("AttachStdin", "bool", False), ("AttachStdout", "bool", False), ("AttachStderr", "bool", False),
    ("ExposedPorts", "set", True), ("Tty", "bool", False), ("OpenStdin", "bool", False),
    ("StdinOnce", "bool", False), ("Env", "strings", False), ("Cmd", "strslice", False),
    ("Healthcheck", "health", True), ("ArgsEscaped", "bool", True), ("Image", "str", False),
    ("Volumes", "set", False), ("WorkingDir", "str", False), ("Entrypoint", "strslice", False),
    ("NetworkDisabled", "bool", True), ("MacAddress", "str", True), ("OnBuild", "strings", False),
    ("Labels", "labels", False), ("StopSignal", "str", True), ("StopTimeout", "intptr", True),
    ("Shell", "strslice", True),
)  # fmt: skip
_V1IMAGE: tuple[Field, ...] = (
    ("id", "str", True), ("parent", "str", True), ("comment", "str", True), ("created", "time", False),
    ("container", "str", True), ("container_config", "config", False), ("docker_version", "str", True),
    ("author", "str", True), ("config", "configptr", True), ("architecture", "str", True),
    ("variant", "str", True), ("os", "str", True), ("Size", "int", True),
)  # fmt: skip


def _pick(doc: dict[str, Any], fields: Sequence[Field]) -> dict[str, Any]:
    """Go's decoding: each key sets the field named exactly so, else one named so case-insensitively;
    a later key wins; unknown keys are dropped."""
    names = {f[0] for f in fields}
    folded = {f[0].lower(): f[0] for f in fields}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = key if key in names else folded.get(key.lower())
        if name is not None and value is not None:
            out[name] = value
    return out


def _list(kind: str, value: Any) -> str | None:
    """A ``[]string`` (``strslice``: a string is a one-element list); None for nil."""
    if kind == "strslice" and isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return None
    return "[" + ",".join(go_json_string(v) if isinstance(v, str) else '""' for v in value) + "]"


def _map(kind: str, value: Any) -> str | None:
    """A map (keys sorted): ``set`` is ``map[string]struct{}``, ``labels`` ``map[string]string``; None for nil."""
    if not isinstance(value, dict):
        return None
    items = sorted(value.items())
    if kind == "set":
        return "{" + ",".join(f"{go_json_string(k)}:{{}}" for k, _ in items) + "}"
    return "{" + ",".join(f"{go_json_string(k)}:{go_json_string(v if isinstance(v, str) else '')}" for k, v in items) + "}"


def _encode(kind: str, value: Any) -> tuple[str, bool]:
    """The field's JSON and whether it is empty (what ``omitempty`` leaves out)."""
    if kind == "str":
        text = value if isinstance(value, str) else ""
        return go_json_string(text), not text
    if kind == "bool":
        return ("true", False) if value is True else ("false", True)
    if kind in ("int", "intptr"):
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        if kind == "intptr":
            return ("null", True) if number is None else (str(number), False)
        return str(number or 0), not number
    if kind in ("strings", "strslice", "set", "labels"):
        found = _list(kind, value) if kind in ("strings", "strslice") else _map(kind, value)
        return ("null", True) if found is None else (found, found in ("[]", "{}"))
    if kind == "health":
        return ("null", True) if not isinstance(value, dict) else (_struct(value, _HEALTH), False)
    if kind in ("config", "configptr"):
        if kind == "configptr" and not isinstance(value, dict):
            return "null", True
        return _struct(value if isinstance(value, dict) else {}, _CONFIG), False
    if kind == "time":
        return go_json_string(go_created(value)), False
    raise AssertionError(kind)


def _members(doc: dict[str, Any], fields: Sequence[Field]) -> list[tuple[str, str]]:
    """The struct's fields in Go's order, each as (name, JSON); empty ``omitempty`` fields left out."""
    values = _pick(doc, fields)
    out: list[tuple[str, str]] = []
    for name, kind, omitempty in fields:
        encoded, empty = _encode(kind, values.get(name))
        if not (omitempty and empty):
            out.append((name, encoded))
    return out


def _struct(doc: dict[str, Any], fields: Sequence[Field]) -> str:
    return "{" + ",".join(f"{go_json_string(k)}:{v}" for k, v in _members(doc, fields)) + "}"


class V1Layer:
    """One layer directory of the legacy layout: its v1 ID, ``json`` bytes and diff ID."""

    __slots__ = ("diff_id", "json", "v1_id")

    def __init__(self, v1_id: str, json: bytes, diff_id: Digest) -> None:
        self.v1_id, self.json, self.diff_id = v1_id, json, diff_id


def _v1_id(members: list[tuple[str, str]], chain: Digest, parent: str) -> str:
    """moby's ``CreateID``: the struct without ``id``, as a map (keys sorted) with layer_id and parent."""
    fields = dict(members)
    fields.pop("id", None)
    fields["layer_id"] = go_json_string(str(chain))
    if parent:
        fields["parent"] = go_json_string(f"sha256:{parent}")
    raw = "{" + ",".join(f"{go_json_string(k)}:{fields[k]}" for k in sorted(fields)) + "}"
    return hashlib.sha256(raw.encode()).hexdigest()


def v1_layers(config: dict[str, Any], diff_ids: Sequence[Digest]) -> list[V1Layer]:
    """The legacy layer directories of an image whose configuration is ``config``."""
    image = {k: v for k, v in config.items() if k.lower() not in ("id", "parent")}
    os_name = _pick(config, _V1IMAGE).get("os")
    out: list[V1Layer] = []
    parent = ""
    chains = chain_ids(list(diff_ids))
    for i, (diff_id, chain) in enumerate(zip(diff_ids, chains, strict=True)):
        doc = image if i == len(diff_ids) - 1 else {"created": EPOCH}
        v1_id = _v1_id(_members(doc, _V1IMAGE), chain, parent)
        final = {**doc, "id": v1_id, "parent": parent, "os": os_name}
        out.append(V1Layer(v1_id, _struct(final, _V1IMAGE).encode(), diff_id))
        parent = v1_id
    return out
