"""What Docker's classic builder records for each step: the ``#(nop)`` comments of metadata
instructions (``/bin/sh -c #(nop)  CMD ["sh"]``), written with Go's ``%q``/``%v`` formatting."""

from __future__ import annotations

from strata.jsonfast import quote

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = ["go_quote", "go_quoted_list", "healthcheck_text", "metadata_comment"]


def go_quote(s: str) -> str:
    """Go's ``%q`` of a string (close enough: JSON escapes without HTML escaping)."""
    return quote(s)  # json.dumps(s, ensure_ascii=False)


def go_quoted_list(items: list[str] | None) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(i) for i in items or []) + "]"


def _duration(ns: int) -> str:
    """Go's time.Duration String() for the values a HEALTHCHECK carries."""
    if ns == 0:
        return "0s"
    units = (("h", 3600 * 10**9), ("m", 60 * 10**9))
    out = ""
    rest = ns
    for name, size in units:
        if rest >= size:
            out += f"{rest // size}{name}"
            rest %= size
    if rest or not out:
        if rest < 10**3:
            return out + f"{rest}ns"
        if rest < 10**6 and not out:
            return f"{rest / 1000:g}µs"
        if rest < 10**9 and not out:
            return f"{rest / 10**6:g}ms"
        out += f"{rest / 10**9:g}s"
    elif out:
        out += "0s"
    return out


def _rune(n: int) -> str:
    """Go's ``%q`` of an int: a quoted character literal."""
    if 32 <= n < 127 and chr(n) not in "'\\":
        return f"'{chr(n)}'"
    return f"'\\x{n:02x}'" if n < 256 else f"'\\u{n:04x}'"


def _healthcheck(h: dict[str, Any]) -> str:
    fields = [go_quoted_list(h.get("Test"))]
    fields += [go_quote(_duration(int(h.get(k) or 0))) for k in ("Interval", "Timeout", "StartPeriod")]
    fields.append(_rune(int(h.get("Retries") or 0)))
    return "&{" + " ".join(fields) + "}"


def healthcheck_text(check: dict[str, Any]) -> str:
    """A HEALTHCHECK's history text, Go's ``%q`` of the HealthConfig pointer."""
    return _healthcheck(check)


def metadata_comment(cmd: str, cfg: dict[str, Any], words: list[str]) -> str:
    """The comment after ``#(nop) `` for a metadata instruction (``words``: its expanded arguments)."""
    if cmd in ("env", "label"):
        pairs = [f"{k}={v}" for k, v in zip(words[::2], words[1::2], strict=False)]
        return cmd.upper() + "".join(" " + p for p in pairs)
    if cmd in ("cmd", "entrypoint"):
        return f"{cmd.upper()} {go_quoted_list(cfg.get(cmd.capitalize() if cmd == 'cmd' else 'Entrypoint'))}"
    if cmd == "volume":
        return "VOLUME [" + " ".join(words) + "]"
    if cmd == "shell":
        return "SHELL [" + " ".join(cfg.get("Shell") or []) + "]"
    if cmd == "healthcheck":  # ``words``: the check as the instruction gave it (the config's may be merged)
        return "HEALTHCHECK " + (words[0] if words else _healthcheck(cfg.get("Healthcheck") or {}))
    return f"{cmd.upper()} " + " ".join(words)
