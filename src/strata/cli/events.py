"""``strata events``: Docker's events from the store's journal (``strata.events``): the past with
``--since``/``--until``, then (without ``--until``, or until it comes) what happens, as it happens."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from strata.errors import StrataError

if TYPE_CHECKING:
    from strata.cli.main import Context

__all__ = ["cmd_events"]


# the daemon's fuzzyMatchName keys: each matches any event by its actor's ID or ``name`` attribute,
# whatever the event's type (``volume=v`` keeps only events whose actor is named v…, as Docker's)
_NAMED_KINDS = ("daemon", "container", "plugin", "volume", "network", "node", "service", "secret", "config")


def _event_matcher(items: list[str]) -> Any:
    """Docker's ``daemon/events.Filter``: every key given must match (values of one key are
    alternatives); a key it does not know restricts nothing and is not refused, as the daemon's."""
    from strata.compat.filters import parse_filters

    keys = frozenset(item.partition("=")[0].strip().lower() for item in items)  # any key: the daemon's way
    fl = parse_filters(items, keys, command="events")

    def exact(key: str, *sources: str) -> bool:
        return key not in fl or any(v == s for v in fl[key] for s in sources)

    def fuzzy(key: str, *sources: str) -> bool:
        return key not in fl or any(s == v or s.startswith(v) for v in fl[key] for s in sources if s)

    def strip_tag(name: str) -> str:
        head, _, tail = name.rpartition(":")
        return head if head and "/" not in tail else name

    def match(msg: dict[str, Any]) -> bool:
        actor = msg.get("Actor") or {}
        ident, attrs, kind = str(actor.get("ID", "")), actor.get("Attributes") or {}, str(msg.get("Type", ""))
        action = str(msg.get("Action", ""))
        if {"health_status", "exec_create", "exec_start"} & set(fl.get("event", [])):
            ok = fuzzy("event", action)
        else:
            ok = exact("event", action)
        image_name = str(attrs.get("name" if kind == "image" else "image", ""))
        labels = all(_label_ok(attrs, v) for v in fl.get("label", []))
        name = str(attrs.get("name", ""))
        return (ok and exact("type", kind) and exact("scope", str(msg.get("scope", "local"))) and labels
                and all(fuzzy(key, ident, name) for key in _NAMED_KINDS)
                and exact("image", ident, image_name, strip_tag(ident), strip_tag(image_name)))

    return match


def _label_ok(attrs: dict[str, Any], wanted: str) -> bool:
    key, eq, value = wanted.partition("=")
    return key in attrs and (not eq or str(attrs[key]) == value)


def _event_writer(ctx: Context, fmt: str | None) -> Any:
    from strata.events import format_line

    if not fmt:
        return lambda msg: format_line(msg)
    from strata.gotemplate import Template, TemplateError

    # Docker's events: the text as a plain template (no ``table``, ``json`` or ``\t`` handling of the list
    # commands), run once on an empty message so that a bad field fails up front, as its makeTemplate
    try:
        template = Template(fmt)
        template.execute(_message_struct({}))
    except TemplateError as e:
        raise StrataError(f"Error parsing format: {e}", exit_code=64) from None
    return lambda msg: template.execute(_message_struct(msg))


def _message_struct(msg: dict[str, Any]) -> Any:
    """The journal's message as Docker's ``events.Message`` for a template: Go's field names (``.Status``,
    ``.ID``, ``.Actor.Attributes``), its JSON the message as recorded."""
    from strata.gotemplate import Struct

    actor = msg.get("Actor") or {}
    return Struct("events.Message", {
        "Status": msg.get("status", ""), "ID": msg.get("id", ""), "From": msg.get("from", ""),
        "Type": msg.get("Type", ""), "Action": msg.get("Action", ""),
        "Actor": Struct("events.Actor", {"ID": actor.get("ID", ""), "Attributes": dict(actor.get("Attributes") or {})},
                        marshal=actor),
        "Scope": msg.get("scope", ""), "Time": msg.get("time", 0), "TimeNano": msg.get("timeNano", 0),
    }, marshal=msg)


def _timestamp_ns(value: str | None) -> int | None:
    """Docker's ``GetTimestamp``; a duration counts back from now in whole seconds (Go's ``Unix()``), so
    ``--until 0s`` ends at the start of the current second, as Docker's does."""
    from strata.compat.gotime import duration_seconds, get_timestamp

    if not value:
        return None
    stamp = get_timestamp(value)
    if value != "0" and duration_seconds(value) is not None:
        return int(stamp) * 1_000_000_000
    return int(stamp * 1_000_000_000)


def cmd_events(args: argparse.Namespace, ctx: Context) -> int:
    from strata.events import Follower, read_events

    since, until = _timestamp_ns(args.since), _timestamp_ns(args.until)
    if since is not None and until is not None and since > until:
        raise StrataError(f"`since` time ({args.since}) cannot be after `until` time ({args.until})")
    match, write = _event_matcher(args.filter), _event_writer(ctx, args.format)
    root = ctx.engine().root
    follower = Follower(root)  # from the journal's end now: nothing between the past and the stream is lost
    last = 0
    if since is not None or until is not None:
        for msg in read_events(root):
            if (since is None or msg["timeNano"] >= since) and (until is None or msg["timeNano"] <= until):
                last = max(last, msg["timeNano"])
                if match(msg):
                    print(write(msg), file=ctx.out, flush=True)
    if until is not None and until <= time.time_ns():
        return 0
    follower.skip_until(last)
    ctx.close()
    while until is None or time.time_ns() < until:
        for msg in follower.poll():
            if (until is None or msg["timeNano"] <= until) and match(msg):
                print(write(msg), file=ctx.out, flush=True)
        time.sleep(0.1)
    return 0
