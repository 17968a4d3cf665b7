"""Docker's image configuration documents: the container config shape, ``-c/--change`` instructions,
RFC 3339 timestamps, and new configs for import and commit."""

from __future__ import annotations

import os
import posixpath
import re
import time

from strata.compat.gotime import DurationError, parse_duration, parse_time
from strata.compat.nat import parse_port_range
from strata.dockerfile import DockerfileError, Instruction, ParseError, expand, parse
from strata.image.spec import empty_container_config

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ChangeError",
    "apply_changes",
    "apply_instruction",
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
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))  # UTC, as datetime's, without loading it
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def go_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


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


class ChangeError(DockerfileError):
    """A ``--change`` Docker's daemon refuses (an invalid parameter: exit 1)."""


def _check_flags(ins: Instruction, allowed: tuple[str, ...] = ()) -> None:
    for name, _ in ins.flags:
        if name not in allowed:
            raise ChangeError(f"Unknown flag: {name}")


def _count(ins: Instruction, exactly_one: bool = False) -> None:
    what = ins.cmd.upper()
    if exactly_one and len(ins.args) != 1:
        raise ChangeError(f"{what} requires exactly one argument")
    if not ins.args:
        raise ChangeError(f"{what} requires at least one argument")


def _expand(word: str, env: list[str], escape: str = "\\") -> str:
    return expand(word, env, escape)


def _go_duration(text: str) -> int:
    """Go's time.ParseDuration in nanoseconds; its error as a ``--change`` error."""
    try:
        return parse_duration(text)
    except DurationError as e:
        raise ChangeError(str(e)) from None


def _interval(ins: Instruction, name: str) -> int:
    text = ins.flag(name) or ""
    if not text:
        return 0
    value = _go_duration(text)
    if value < 1_000_000:
        raise ChangeError(f'Interval "{name}" cannot be less than 1ms')
    return value


def _healthcheck(ins: Instruction) -> dict[str, Any]:
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
        value = _interval(ins, flag)
        if value:
            health[key] = value
    raw_retries = ins.flag("retries")
    if raw_retries:
        try:
            retries = int(raw_retries)
        except ValueError:
            raise ChangeError(f'strconv.ParseInt: parsing "{raw_retries}": invalid syntax') from None
        if retries < 1:
            raise ChangeError(f"--retries must be at least 1 (not {retries})")
        health["Retries"] = retries
    return health


def _exposed(spec: str) -> list[str]:
    """nat.ParsePortSpec's container ports of one EXPOSE word."""
    container = spec.rsplit(":", 1)[-1]
    port, _, proto = container.partition("/")
    proto = proto or "tcp"
    if not port:
        raise ChangeError(f"No port specified: {spec}<empty>")
    try:
        start, end = parse_port_range(port)
    except ValueError:
        raise ChangeError(f"Invalid containerPort: {port}") from None
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise ChangeError(f"Invalid proto: {proto}")
    return [f"{p}/{proto.lower()}" for p in range(start, end + 1)]


def _shell_form(ins: Instruction, cfg: dict[str, Any]) -> list[str]:
    return ins.args if ins.json else [*(cfg.get("Shell") or DEFAULT_SHELL), *ins.args]


def _env_label(ins: Instruction, cfg: dict[str, Any], env: list[str], escape: str) -> None:
    _check_flags(ins)
    _count(ins)
    if len(ins.args) % 2:
        raise ChangeError(f"Bad input to {ins.cmd.upper()}, too many arguments")
    pairs = [(_expand(k, env, escape), _expand(v, env, escape)) for k, v in zip(ins.args[::2], ins.args[1::2], strict=True)]
    if ins.cmd == "label":
        cfg["Labels"] = {**(cfg.get("Labels") or {}), **dict(pairs)}
        return
    new_env = list(cfg.get("Env") or [])
    for k, v in pairs:
        keys = [e.split("=", 1)[0] for e in new_env]
        if k in keys:
            new_env[keys.index(k)] = f"{k}={v}"
        else:
            new_env.append(f"{k}={v}")
    cfg["Env"] = new_env


def _cmd_entrypoint(ins: Instruction, cfg: dict[str, Any], state: dict[str, bool]) -> None:
    _check_flags(ins)
    if ins.cmd == "cmd":
        cfg["Cmd"] = _shell_form(ins, cfg)
        if ins.args:
            state["cmd_set"] = True
        return
    cfg["Entrypoint"] = _shell_form(ins, cfg) if ins.args else None
    if not state["cmd_set"]:
        cfg["Cmd"] = None


def _expose(ins: Instruction, cfg: dict[str, Any], env: list[str], escape: str) -> None:
    _check_flags(ins)
    _count(ins)
    ports = dict(cfg.get("ExposedPorts") or {})
    for word in ins.args:
        for p in _expand(word, env, escape).split():  # the one instruction whose words may expand to several
            ports.update({key: {} for key in _exposed(p)})
    cfg["ExposedPorts"] = ports


def _volume(ins: Instruction, cfg: dict[str, Any], env: list[str], escape: str) -> None:
    _check_flags(ins)
    _count(ins)
    vols = dict(cfg.get("Volumes") or {})
    for v in ins.args:
        v = _expand(v.strip(), env, escape) if v.strip() else ""
        if not v:
            raise ChangeError("VOLUME specified can not be an empty string")
        vols[v] = {}
    cfg["Volumes"] = vols


def _user_workdir(ins: Instruction, cfg: dict[str, Any], env: list[str], escape: str) -> None:
    _check_flags(ins)
    _count(ins, exactly_one=True)
    value = _expand(ins.args[0], env, escape)
    if ins.cmd == "user":
        cfg["User"] = value
        return
    if not value:
        raise ChangeError("cannot normalize nothing")
    base = cfg.get("WorkingDir") or ""
    cfg["WorkingDir"] = value if value.startswith("/") else posixpath.normpath(posixpath.join("/", base, value))


def _onbuild(ins: Instruction, cfg: dict[str, Any]) -> None:
    _count(ins)
    trigger = ins.args[0].upper()
    if trigger == "ONBUILD":
        raise ChangeError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise ChangeError(f"{trigger} isn't allowed as an ONBUILD trigger")
    cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), re.sub(r"(?i)^\s*ONBUILD\s*", "", ins.original)]


def _stopsignal_shell(ins: Instruction, cfg: dict[str, Any], env: list[str], escape: str) -> None:
    _check_flags(ins)
    if ins.cmd == "shell":
        if not ins.args:
            raise ChangeError("SHELL requires at least one argument")
        if not ins.json:
            raise ChangeError("SHELL requires the arguments to be in JSON form")
        cfg["Shell"] = list(ins.args)
        return
    _count(ins, exactly_one=True)
    cfg["StopSignal"] = _expand(ins.args[0], env, escape)


def apply_instruction(
    ins: Instruction,
    cfg: dict[str, Any],
    state: dict[str, bool],
    env: list[str] | None = None,
    escape: str = "\\",
) -> None:
    """Apply one metadata instruction (CMD ENTRYPOINT ENV EXPOSE HEALTHCHECK LABEL ONBUILD USER VOLUME
    WORKDIR STOPSIGNAL SHELL) to ``cfg`` as Docker's builder does; words are expanded against ``env``
    (default: the config's Env). ``state["cmd_set"]``: a CMD came earlier in this stage."""
    env = list(cfg.get("Env") or []) if env is None else env
    if ins.cmd in ("env", "label"):
        _env_label(ins, cfg, env, escape)
    elif ins.cmd in ("cmd", "entrypoint"):
        _cmd_entrypoint(ins, cfg, state)
    elif ins.cmd == "healthcheck":
        cfg["Healthcheck"] = _healthcheck(ins)
    elif ins.cmd == "expose":
        _expose(ins, cfg, env, escape)
    elif ins.cmd == "volume":
        _volume(ins, cfg, env, escape)
    elif ins.cmd in ("user", "workdir"):
        _user_workdir(ins, cfg, env, escape)
    elif ins.cmd == "onbuild":
        _onbuild(ins, cfg)
    elif ins.cmd in ("stopsignal", "shell"):
        _stopsignal_shell(ins, cfg, env, escape)


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply ``-c``/``--change`` Dockerfile instructions to a container config, as Docker's daemon
    (builder/dockerfile BuildFromConfig): the changes are one small Dockerfile (comments, ``\\``
    continuations), only CMD ENTRYPOINT ENV EXPOSE HEALTHCHECK LABEL ONBUILD USER VOLUME WORKDIR are
    allowed, arguments get Dockerfile variable expansion against the config's Env, and ENTRYPOINT
    resets CMD unless a CMD came before it. The result has Docker's field order."""
    cfg = dict(config)
    if changes:
        try:
            parsed = parse("\n".join(changes), strict=False).instructions
        except ParseError as e:
            raise ChangeError(e.reason) from None
        if not parsed:
            raise ChangeError("file with no instructions")
        for ins in parsed:
            if ins.cmd not in VALID_CHANGES:
                raise ChangeError(f"{ins.cmd} is not a valid change command")
        state = {"cmd_set": False}
        for ins in parsed:
            try:
                apply_instruction(ins, cfg, state)
            except DockerfileError as e:
                raise ChangeError(str(e)) from None
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
    docker_version: str = "",
) -> dict[str, Any]:
    """An image config: ``base``'s history plus one new entry; rootfs is filled by the store.
    ``docker_version`` is the engine's version, as Docker's import and commit write it."""
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
    if docker_version:
        out["docker_version"] = docker_version
    out["history"] = [*history, entry]
    out["os"] = (base or {}).get("os") or "linux"
    out["rootfs"] = {"type": "layers", "diff_ids": []}
    if (base or {}).get("variant"):
        out["variant"] = (base or {})["variant"]  # Docker's BaseImgVariant
    return out
