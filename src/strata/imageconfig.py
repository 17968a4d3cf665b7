"""Docker's image configuration documents: the container config shape, ``-c/--change`` instructions,
RFC 3339 timestamps, and new configs for import and commit."""

from __future__ import annotations

import json
import os
import posixpath
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from strata.compat.gotime import DurationError, parse_duration
from strata.errors import StrataError

__all__ = [
    "ChangeError",
    "apply_changes",
    "empty_container_config",
    "go_arch",
    "new_image_config",
    "ordered_config",
    "parse_time",
    "rfc3339_nano",
]



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


# --- -c/--change: Dockerfile instructions applied to a container config (Docker's BuildFromConfig) ---

VALID_CHANGES = ("cmd", "entrypoint", "healthcheck", "env", "expose", "label", "onbuild", "user", "volume", "workdir")
DEFAULT_SHELL = ["/bin/sh", "-c"]

# container.Config's fields in Go's order; the omitempty ones are left out when empty
CONFIG_FIELDS = (
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
    "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell",
)  # fmt: skip
OMIT_EMPTY = frozenset(
    {"ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled", "MacAddress", "StopSignal", "StopTimeout", "Shell"}
)
SORTED_MAPS = ("ExposedPorts", "Volumes", "Labels")


class ChangeError(StrataError):
    """A ``--change`` Docker's daemon refuses (an invalid parameter: exit 1)."""


@dataclass
class _Instruction:
    cmd: str  # lower case
    original: str  # the whole instruction line
    flags: dict[str, str]
    args: list[str]
    json: bool = False


def _logical_lines(text: str) -> list[str]:
    """Dockerfile lines: comments and blank lines dropped, ``\\`` continuations joined."""
    out: list[str] = []
    pending = ""
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if re.match(r"^\s*#", line):
            continue
        if not line.strip() and not pending:
            continue
        m = re.search(r"\\[ \t]*$", line)
        if m:
            pending += line[: m.start()]
            continue
        out.append(pending + line)
        pending = ""
    if pending.strip():
        out.append(pending)
    return out


def _parse_words(rest: str) -> list[str]:
    """The parser's parseWords: split on blanks, quotes and escapes kept inside words."""
    words: list[str] = []
    word = ""
    quote = ""
    blank_ok = False
    in_word = False
    i = 0
    while i < len(rest):
        ch = rest[i]
        if not in_word:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote != "'":
                if i + 1 == len(rest):
                    i += 1
                    continue
                word += ch
                i += 1
                ch = rest[i]
            word += ch
        elif ch.isspace():
            if blank_ok or word:
                words.append(word)
            word, blank_ok, in_word = "", False, False
        else:
            if ch in "'\"":
                quote, blank_ok = ch, True
            if ch == "\\":
                if i + 1 == len(rest):
                    i += 1
                    continue
                word += ch
                i += 1
                ch = rest[i]
            word += ch
        i += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words


def _name_values(rest: str, what: str) -> list[str]:
    """``KEY name value`` (old form) or ``KEY a=b c=d`` as flat key, value, key, value…"""
    words = _parse_words(rest)
    if not words:
        return []
    if "=" not in words[0]:
        parts = re.split(r"\s+", rest.strip(), maxsplit=1)
        if len(parts) < 2:
            raise ChangeError(f"{what} must have two arguments")
        return parts
    out: list[str] = []
    for w in words:
        if "=" not in w:
            raise ChangeError(f'Syntax error - can\'t find = in "{w}". Must be of the form: name=value')
        out.extend(w.split("=", 1))
    return out


def _json_array(rest: str) -> list[str] | None:
    """A JSON string array (Go's decoder reads the first value only), or None when not JSON."""
    text = rest.lstrip()
    if not text.startswith("["):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise ChangeError("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _split_flags(rest: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    while True:
        m = re.match(r"\s*--([^\s=]*)(?:=(\S*))?(?=\s|$)", rest)
        if not m:
            return flags, rest.strip()
        flags[m.group(1)] = m.group(2) or ""
        rest = rest[m.end() :]


def _parse_line(line: str) -> _Instruction:
    m = re.match(r"(\S+)\s*(.*)$", line.strip(), re.DOTALL)
    word, rest = (m.group(1), m.group(2)) if m else ("", "")
    cmd = word.lower()
    flags, rest = _split_flags(rest)
    ins = _Instruction(cmd, line.strip(), flags, [])
    if cmd in ("env", "label"):
        ins.args = _name_values(rest, cmd.upper())
    elif cmd in ("cmd", "entrypoint"):
        arr = _json_array(rest) if rest else None
        ins.json = arr is not None
        ins.args = arr if arr is not None else ([rest] if rest else [])
    elif cmd == "volume":
        arr = _json_array(rest)
        ins.args = arr if arr is not None else rest.split()
    elif cmd == "expose":
        ins.args = rest.split()
    elif cmd in ("user", "workdir"):
        ins.args = [rest] if rest else []
    elif cmd == "onbuild":
        if rest:
            _parse_line(rest)
            ins.args = [rest.split()[0].lower()]
    elif cmd == "healthcheck":
        typ, _, body = rest.partition(" ")
        body = body.strip()
        arr = _json_array(body) if body else None
        ins.json = arr is not None
        ins.args = ([typ] if typ else []) + (arr if arr is not None else ([body] if body else []))
    return ins


def _check_flags(ins: _Instruction, allowed: tuple[str, ...] = ()) -> None:
    for name in ins.flags:
        if name not in allowed:
            raise ChangeError(f"Unknown flag: {name}")


def _count(ins: _Instruction, exactly_one: bool = False) -> None:
    what = ins.cmd.upper()
    if exactly_one and len(ins.args) != 1:
        raise ChangeError(f"{what} requires exactly one argument")
    if not ins.args:
        raise ChangeError(f"{what} requires at least one argument")


class _Shell:
    """Docker's shell-word processing for ENV, LABEL, USER, WORKDIR, VOLUME and EXPOSE arguments."""

    def __init__(self, word: str, env: list[str]) -> None:
        self.text = word
        self.pos = 0
        self.env = env

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def getenv(self, name: str) -> str:
        for entry in self.env:
            key, sep, value = entry.partition("=")
            if key == name:
                return value if sep else ""
        return ""

    def process(self, stop: str = "") -> str:
        out: list[str] = []
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out)
            if ch == "'":
                out.append(self.single_quote())
            elif ch == '"':
                out.append(self.double_quote())
            elif ch == "$":
                out.append(self.dollar())
            else:
                ch = self.next()
                if ch == "\\":
                    ch = self.next()
                    if not ch:
                        break
                out.append(ch)
        if stop:
            raise ChangeError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise ChangeError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ChangeError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == "\\" and self.peek() in ('"', "$", "\\") and self.peek():
                ch = self.next()
            out.append(ch)

    def name(self) -> str:
        ch = self.peek()
        if ch.isdigit():
            digits = ""
            while self.peek().isdigit():
                digits += self.next()
            return digits
        if ch and ch in "*#$@!?-":
            return self.next()
        name = ""
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            name += self.next()
        return name

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.getenv(name) if name else "$"
        self.next()
        if not self.peek():
            raise ChangeError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ChangeError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.getenv(name)
        if ch != ":":
            raise ChangeError("missing ':' in substitution")
        modifier = self.next()
        try:
            word = self.process("}")
        except ChangeError:
            if not self.peek():
                raise ChangeError("syntax error: missing '}'") from None
            raise
        value = self.getenv(name)
        if modifier == "+":
            return word if value else value
        if modifier == "-":
            return value or word
        if modifier == "?":
            if not value:
                raise ChangeError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        raise ChangeError(f"unsupported modifier ({modifier}) in substitution")


def _expand(word: str, env: list[str]) -> str:
    try:
        return _Shell(word, env).process()
    except ChangeError as e:
        raise ChangeError(f"failed to process {json.dumps(word, ensure_ascii=False)}: {e}") from None


def _go_duration(text: str) -> int:
    """Go's time.ParseDuration in nanoseconds; its error as a ``--change`` error."""
    try:
        return parse_duration(text)
    except DurationError as e:
        raise ChangeError(str(e)) from None


def _interval(flags: dict[str, str], name: str) -> int:
    text = flags.get(name, "")
    if not text:
        return 0
    value = _go_duration(text)
    if value < 1_000_000:
        raise ChangeError(f'Interval "{name}" cannot be less than 1ms')
    return value


def _healthcheck(ins: _Instruction) -> dict[str, Any]:
    _count(ins)
    typ = ins.args[0].upper()
    rest = ins.args[1:]
    if typ == "NONE":
        if rest:
            raise ChangeError("HEALTHCHECK NONE takes no arguments")
        _check_flags(ins)
        return {"Test": ["NONE"]}
    _check_flags(ins, ("interval", "timeout", "start-period", "retries"))
    if typ != "CMD":
        raise ChangeError(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
    if not rest:
        raise ChangeError("Missing command after HEALTHCHECK CMD")
    health: dict[str, Any] = {"Test": (["CMD"] if ins.json else ["CMD-SHELL"]) + rest}
    for key, flag in (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start-period")):
        value = _interval(ins.flags, flag)
        if value:
            health[key] = value
    if ins.flags.get("retries"):
        try:
            retries = int(ins.flags["retries"])
        except ValueError:
            raise ChangeError(f'strconv.ParseInt: parsing "{ins.flags["retries"]}": invalid syntax') from None
        if retries < 1:
            raise ChangeError(f"--retries must be at least 1 (not {retries})")
        health["Retries"] = retries
    return health


def _port_range(text: str) -> tuple[int, int]:
    if not text:
        raise ValueError("empty")
    lo, sep, hi = text.partition("-")
    start = int(lo)
    end = int(hi) if sep else start
    if not (0 <= start <= 65535 and 0 <= end <= 65535) or end < start or not lo.isdigit() or (sep and not hi.isdigit()):
        raise ValueError(text)
    return start, end


def _exposed(spec: str) -> list[str]:
    """nat.ParsePortSpec's container ports of one EXPOSE word."""
    container = spec.rsplit(":", 1)[-1]
    port, _, proto = container.partition("/")
    proto = proto or "tcp"
    if not port:
        raise ChangeError(f"No port specified: {spec}<empty>")
    try:
        start, end = _port_range(port)
    except ValueError:
        raise ChangeError(f"Invalid containerPort: {port}") from None
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise ChangeError(f"Invalid proto: {proto}")
    return [f"{p}/{proto.lower()}" for p in range(start, end + 1)]


def _shell_form(ins: _Instruction, cfg: dict[str, Any]) -> list[str]:
    return ins.args if ins.json else [*(cfg.get("Shell") or DEFAULT_SHELL), *ins.args]


def _dispatch(ins: _Instruction, cfg: dict[str, Any], state: dict[str, bool]) -> None:
    env = list(cfg.get("Env") or [])
    if ins.cmd in ("env", "label"):
        _check_flags(ins)
        _count(ins)
        if len(ins.args) % 2:
            raise ChangeError(f"Bad input to {ins.cmd.upper()}, too many arguments")
        pairs = [(_expand(k, env), _expand(v, env)) for k, v in zip(ins.args[::2], ins.args[1::2], strict=True)]
        if ins.cmd == "label":
            cfg["Labels"] = {**(cfg.get("Labels") or {}), **dict(pairs)}
            return
        for k, v in pairs:
            keys = [e.split("=", 1)[0] for e in env]
            if k in keys:
                env[keys.index(k)] = f"{k}={v}"
            else:
                env.append(f"{k}={v}")
        cfg["Env"] = env
    elif ins.cmd == "cmd":
        _check_flags(ins)
        cfg["Cmd"] = _shell_form(ins, cfg)
        if ins.args:
            state["cmd_set"] = True
    elif ins.cmd == "entrypoint":
        _check_flags(ins)
        cfg["Entrypoint"] = _shell_form(ins, cfg) if ins.args else None
        if not state["cmd_set"]:
            cfg["Cmd"] = None
    elif ins.cmd == "healthcheck":
        cfg["Healthcheck"] = _healthcheck(ins)
    elif ins.cmd == "expose":
        _check_flags(ins)
        _count(ins)
        ports = dict(cfg.get("ExposedPorts") or {})
        for word in ins.args:
            for p in _expose_words(word, env):
                ports.update({key: {} for key in _exposed(p)})
        cfg["ExposedPorts"] = ports
    elif ins.cmd == "volume":
        _check_flags(ins)
        _count(ins)
        vols = dict(cfg.get("Volumes") or {})
        for v in ins.args:
            v = _expand(v.strip(), env) if v.strip() else ""
            if not v:
                raise ChangeError("VOLUME specified can not be an empty string")
            vols[v] = {}
        cfg["Volumes"] = vols
    elif ins.cmd == "user":
        _check_flags(ins)
        _count(ins, exactly_one=True)
        cfg["User"] = _expand(ins.args[0], env)
    elif ins.cmd == "workdir":
        _check_flags(ins)
        _count(ins, exactly_one=True)
        path = _expand(ins.args[0], env)
        if not path:
            raise ChangeError("cannot normalize nothing")
        cfg["WorkingDir"] = path if path.startswith("/") else posixpath.normpath(posixpath.join("/", cfg.get("WorkingDir") or "", path))
    elif ins.cmd == "onbuild":
        _count(ins)
        trigger = ins.args[0].upper()
        if trigger == "ONBUILD":
            raise ChangeError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("MAINTAINER", "FROM"):
            raise ChangeError(f"{trigger} isn't allowed as an ONBUILD trigger")
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), re.sub(r"(?i)^\s*ONBUILD\s*", "", ins.original)]


def _expose_words(word: str, env: list[str]) -> list[str]:
    """EXPOSE is the one instruction whose words may expand to several (``$PORTS``)."""
    return _expand(word, env).split()


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply ``-c``/``--change`` Dockerfile instructions to a container config, as Docker's daemon
    (builder/dockerfile BuildFromConfig): the changes are one small Dockerfile (comments, ``\\``
    continuations), only CMD ENTRYPOINT ENV EXPOSE HEALTHCHECK LABEL ONBUILD USER VOLUME WORKDIR are
    allowed, arguments get Dockerfile variable expansion against the config's Env, and ENTRYPOINT
    resets CMD unless a CMD came before it. The result has Docker's field order."""
    cfg = dict(config)
    if changes:
        lines = _logical_lines("\n".join(changes))
        if not lines:
            raise ChangeError("file with no instructions")
        parsed = [_parse_line(line) for line in lines]
        for ins in parsed:
            if ins.cmd not in VALID_CHANGES:
                raise ChangeError(f"{ins.cmd} is not a valid change command")
        state = {"cmd_set": False}
        for ins in parsed:
            _dispatch(ins, cfg, state)
    return ordered_config(cfg)


def ordered_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """A container config as Go marshals container.Config: struct order, empty omitempty fields
    dropped, map keys sorted; fields Go does not know are kept at the end."""
    out: dict[str, Any] = {}
    for key in CONFIG_FIELDS:
        if key not in cfg:
            continue
        value = cfg[key]
        if key in OMIT_EMPTY and not value:
            continue
        if key in SORTED_MAPS and isinstance(value, dict):
            value = dict(sorted(value.items()))
        out[key] = value
    out.update((k, v) for k, v in cfg.items() if k not in out and k not in CONFIG_FIELDS)
    return out


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
