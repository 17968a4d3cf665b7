"""Logging options as Docker's: ``--log-driver json-file|none`` with ``--log-opt`` (checked as the
json-file driver checks them), the ``attrs`` its entries carry (``labels``/``env``), and the
``logs --since/--until`` times (Docker's timetypes: RFC 3339 forms, unix timestamps, durations)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote_plus

from strata.errors import StrataError

__all__ = ["JSON_FILE_OPTS", "entry_line", "entry_time", "log_attrs", "log_config", "log_window", "parse_log_time",
           "rotation"]

JSON_FILE_OPTS = ("max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag")
_DECIMAL = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def _from_human_size(text: str) -> int:
    """go-units ``FromHumanSize``: decimal multiples (``1k`` = 1000), Docker's error."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?) ?([kmgtpb]?)(?:i?b)?", text.lower())
    if not m:
        raise StrataError(f"failed to initialize logging driver: invalid size: '{text}'", exit_code=125)
    return int(float(m.group(1)) * _DECIMAL[m.group(2)])


def rotation(config: dict[str, str]) -> tuple[int, int]:
    """(max-size bytes or -1, max-file) of a json-file ``Config``, with the driver's errors."""
    size = -1
    if "max-size" in config:
        size = _from_human_size(config["max-size"])
        if size <= 0:
            raise StrataError("failed to initialize logging driver: max-size must be a positive number",
                              exit_code=125)
    files = 1
    if "max-file" in config:
        text = config["max-file"]
        if not re.fullmatch(r"[+-]?\d+", text):
            raise StrataError(f'failed to initialize logging driver: strconv.Atoi: parsing "{text}": invalid syntax',
                              exit_code=125)
        files = int(text)
        if files < 1:
            raise StrataError("failed to initialize logging driver: max-file cannot be less than 1", exit_code=125)
    return size, files


def log_config(driver: str | None, opts: list[str], cmd: str) -> dict[str, Any]:
    """``HostConfig.LogConfig`` of the flags: Docker's CLI and daemon checks."""
    config = {}
    for item in opts:
        key, _, value = item.partition("=")
        config[key] = value
    kind = driver or "json-file"
    if kind == "none" and config:
        raise StrataError(f"invalid logging opts for driver none.\nSee 'strata {cmd} --help'.", exit_code=125)
    if kind not in ("json-file", "none"):
        raise StrataError(f'error looking up logging plugin {kind}: plugin "{kind}" not found', exit_code=125)
    for key in config:
        if key not in JSON_FILE_OPTS:
            raise StrataError(f"unknown log opt '{key}' for json-file log driver", exit_code=125)
    rotation(config)
    return {"Type": kind, "Config": dict(sorted(config.items()))}


def log_attrs(config: dict[str, Any], log_cfg: dict[str, Any]) -> dict[str, str]:
    """The ``attrs`` each json-file entry carries: the labels and env variables ``--log-opt
    labels=``/``env=`` name (``--details`` shows them)."""
    opts = dict(log_cfg.get("Config") or {})
    attrs: dict[str, str] = {}
    labels = dict(config.get("Labels") or {})
    for key in filter(None, opts.get("labels", "").split(",")):
        if key in labels:
            attrs[key] = labels[key]
    env = dict(e.split("=", 1) for e in config.get("Env") or [] if "=" in e)
    for key in filter(None, opts.get("env", "").split(",")):
        if key in env:
            attrs[key] = env[key]
    return attrs


_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?)?(Z|[+-]\d{2}:\d{2})?",
                   re.IGNORECASE)


def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def parse_log_time(value: str, what: str, now: float | None = None) -> float:
    """``--since``/``--until`` as epoch seconds: a Go duration before now, an RFC 3339 time (local
    without a zone), or a unix timestamp; Docker's error otherwise."""
    from strata.compat.gotime import parse_duration

    now = time.time() if now is None else now
    if value != "0":
        try:
            return float(int(now - parse_duration(value) / 1e9))  # Go's Unix(): whole seconds
        except ValueError:
            pass
    m = _TIME.fullmatch(value)
    if m:
        try:
            y, mo, d, h, mi, sec = (int(g or 0) for g in m.groups()[:6])
            stamp = datetime(y, mo, d, h, mi, sec, tzinfo=_zone(m.group(8)))
        except ValueError as e:
            raise StrataError(f'invalid value for "{what}": parsing time "{value}": {e}') from None
        seconds = stamp.timestamp() if stamp.tzinfo else stamp.astimezone().timestamp()
        return seconds + float(m.group(7) or 0)
    if "-" not in value and re.fullmatch(r"\d+(\.\d{1,9})?", value):
        return float(value)
    raise StrataError(f'invalid value for "{what}": failed to parse value as time or duration: "{value}"')


def entry_time(stamp: str) -> int:
    """A json-file entry's RFC 3339 time in nanoseconds since the epoch (0 when unreadable)."""
    m = _TIME.fullmatch(stamp)
    if not m:
        return 0
    y, mo, d, h, mi, sec = (int(g or 0) for g in m.groups()[:6])
    try:
        whole = datetime(y, mo, d, h, mi, sec, tzinfo=_zone(m.group(8)) or UTC)
    except ValueError:
        return 0
    frac = (m.group(7) or ".")[1:10].ljust(9, "0")
    return int(whole.timestamp()) * 1_000_000_000 + int(frac)


def log_window(since: str | None, until: str | None) -> Callable[[str], int]:
    """``--since``/``--until`` as a test of an entry's time: -1 before the window, 0 in it, 1 after."""
    lo = round(parse_log_time(since, "since") * 1e9) if since else None
    hi = round(parse_log_time(until, "until") * 1e9) if until else None

    def where(stamp: str) -> int:
        if lo is None and hi is None:
            return 0
        ns = entry_time(stamp)
        if lo is not None and ns < lo:
            return -1
        return 1 if hi is not None and ns > hi else 0

    return where


def entry_line(entry: Any, *, timestamps: bool, details: bool) -> str:
    """One entry as ``logs`` prints it: ``[time ][attrs ]text`` (attrs ``k=v`` sorted, query-escaped)."""
    text = entry.text
    if details:
        attrs = ",".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(entry.attrs.items()))
        text = f"{attrs} {text}"
    return f"{entry.time} {text}" if timestamps else text
