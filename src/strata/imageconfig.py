"""Docker's image configuration documents: the container config shape, ``-c/--change`` instructions,
RFC 3339 timestamps, and new configs for import and commit."""

from __future__ import annotations

import json
import os
import shlex
import time
from datetime import UTC, datetime
from typing import Any

from strata.errors import UsageError

__all__ = [
    "apply_changes",
    "empty_container_config",
    "go_arch",
    "new_image_config",
    "parse_time",
    "rfc3339_nano",
]

CHANGE_INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL")


def rfc3339_nano(ns: int | None = None) -> str:
    """Go's RFC3339Nano in UTC: ``2026-11-27T17:22:02.123456789Z`` with trailing zeros trimmed."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with up to nanosecond precision (0 if unparsable)."""
    if not text:
        return 0.0
    try:
        main, _, rest = text.partition(".")
        if rest:
            digits = ""
            i = 0
            while i < len(rest) and rest[i].isdigit():
                digits += rest[i]
                i += 1
            tz = rest[i:]
            frac = float("0." + digits) if digits else 0.0
        else:
            tz = main[19:]
            main = main[:19]
            frac = 0.0
        tz = "+00:00" if tz in ("Z", "z", "") else tz
        return datetime.fromisoformat(main[:19] + tz).timestamp() + frac
    except ValueError:
        return 0.0


def go_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def empty_container_config() -> dict[str, Any]:
    """A ``container.Config`` with Docker's field order and zero values."""
    return {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": None,
        "Cmd": None,
        "Image": "",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
    }


def _json_or_shell(args: str, shell: bool) -> list[str]:
    text = args.strip()
    if text.startswith("["):
        try:
            val = json.loads(text)
            if isinstance(val, list) and all(isinstance(v, str) for v in val):
                return val
        except ValueError:
            pass
    return ["/bin/sh", "-c", text] if shell else shlex.split(text)


def _pairs(args: str, what: str) -> list[tuple[str, str]]:
    words = shlex.split(args)
    if not words:
        raise UsageError(f"{what} requires at least one argument")
    if "=" not in words[0]:
        if len(words) < 2:
            raise UsageError(f"{what} must have two arguments")
        return [(words[0], args.strip()[len(words[0]) :].strip())]
    out = []
    for w in words:
        if "=" not in w:
            raise UsageError(f"Syntax error - can't find = in \"{w}\". Must be of the form: name=value")
        k, v = w.split("=", 1)
        out.append((k, v))
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply Dockerfile instructions given with ``-c``/``--change`` to a container config."""
    cfg = dict(config)
    for change in changes:
        text = change.strip()
        if not text:
            continue
        word, _, args = text.partition(" ")
        inst = word.upper()
        if inst not in CHANGE_INSTRUCTIONS:
            raise UsageError(f"{word} is not a valid change command")
        if inst == "CMD":
            cfg["Cmd"] = _json_or_shell(args, True)
        elif inst == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(args, True)
        elif inst == "ENV":
            env = list(cfg.get("Env") or [])
            for k, v in _pairs(args, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif inst == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(dict(_pairs(args, "LABEL")))
            cfg["Labels"] = labels
        elif inst == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in args.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif inst == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _json_or_shell(args, False):
                vols[v] = {}
            cfg["Volumes"] = vols
        elif inst == "USER":
            cfg["User"] = args.strip()
        elif inst == "WORKDIR":
            cfg["WorkingDir"] = args.strip()
        elif inst == "STOPSIGNAL":
            cfg["StopSignal"] = args.strip()
        elif inst == "ONBUILD":
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), args.strip()]
    return cfg


def new_image_config(
    *,
    config: dict[str, Any],
    comment: str = "",
    author: str = "",
    created_by: str = "",
    base: dict[str, Any] | None = None,
    container: str = "",
    container_config: dict[str, Any] | None = None,
    created: str | None = None,
    empty_layer: bool = False,
) -> dict[str, Any]:
    """An image config: ``base``'s history plus one new entry; rootfs is filled by the store."""
    now = created or rfc3339_nano()
    entry: dict[str, Any] = {"created": now}
    if author:
        entry["author"] = author
    if created_by:
        entry["created_by"] = created_by
    if comment:
        entry["comment"] = comment
    if empty_layer:
        entry["empty_layer"] = True
    history = list((base or {}).get("history") or [])
    out: dict[str, Any] = {}
    if author:
        out["author"] = author
    out["architecture"] = (base or {}).get("architecture") or go_arch()
    if comment:
        out["comment"] = comment
    out["config"] = config
    if container:
        out["container"] = container
    if container_config is not None:
        out["container_config"] = container_config
    out["created"] = now
    out["history"] = [*history, entry]
    out["os"] = (base or {}).get("os") or "linux"
    out["rootfs"] = {"type": "layers", "diff_ids": []}
    return out
