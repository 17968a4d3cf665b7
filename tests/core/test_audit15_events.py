"""``strata events --filter`` for the kinds Docker matches by name (``volume``, ``network``, ``container``,
``daemon`` …) side by side with a private Docker 20.10 daemon: the daemon's filter keeps an event only when
its actor's ID or ``name`` starts with the value, whatever the event's type (``volume=v`` drops every
container event; ``container=x`` keeps a volume named x…)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

pytestmark = pytest.mark.peers

_FMT = "{{.Type}} {{.Action}} {{.Actor.ID}}"


def _volume_events(tool: Any, prefix: str) -> str:
    start = str(time.time() - 0.5)
    for suffix in ("a", "b"):
        tool("volume", "create", prefix + suffix)
    for suffix in ("a", "b"):
        tool("volume", "rm", prefix + suffix)
    time.sleep(0.3)
    return start


def _filtered(tool: Any, start: str, until: str, *filters: str) -> list[str]:
    args = [a for f in filters for a in ("--filter", f)]
    return tool("events", "--since", start, "--until", until, *args, "--format", _FMT).stdout.splitlines()


def test_named_kind_filters_match_any_event_by_actor_name_as_docker(strata: Strata, dockerd: Any) -> None:
    prefix = "ev15" + uuid.uuid4().hex[:8]
    starts = {"docker": _volume_events(dockerd.run, prefix), "strata": _volume_events(strata, prefix)}
    until = str(time.time())
    cases = ([f"volume={prefix}a"], [f"container={prefix}"], [f"daemon={prefix}b"], [f"network={prefix}"],
             [f"volume={prefix}a", f"container={prefix}b"], [f"plugin={prefix}", "event=destroy"],
             ["volume=nomatch" + prefix])
    seen = {}
    for who, tool in (("docker", dockerd.run), ("strata", strata)):
        seen[who] = [_filtered(tool, starts[who], until, *case) for case in cases]
    assert seen["strata"] == seen["docker"]
    assert seen["strata"][0] == [f"volume create {prefix}a", f"volume destroy {prefix}a"]
    assert seen["strata"][1] == [f"volume {a} {prefix}{s}" for a in ("create", "destroy") for s in "ab"]
    assert seen["strata"][4] == seen["strata"][6] == []


def test_events_format_is_a_plain_template_checked_up_front_as_docker(strata: Strata, dockerd: Any) -> None:
    """Docker's events ``--format`` is ``templates.Parse`` of the text as given (no ``table``, ``json`` or
    ``\\t`` handling of the list commands) run once on an empty message: a bad field fails before any
    event, ``Error parsing format: …``, exit 64."""
    name = "evf15" + uuid.uuid4().hex[:8]
    starts = {}
    for who, tool in (("docker", dockerd.run), ("strata", strata)):
        starts[who] = str(time.time() - 0.5)
        tool("volume", "create", name)
    time.sleep(0.3)
    until = str(time.time())
    seen: dict[str, list[tuple[int, str, str]]] = {}
    for who, tool in (("docker", dockerd.run), ("strata", strata)):
        seen[who] = []
        for fmt in ("table {{.Type}}", "json", "{{.Type}}\\t{{.Action}}", " {{.Actor.ID}} ",
                    "{{.Actor.Nope}}", "{{.Nope", "{{.Status}}|{{.ID}}|{{json .Actor}}"):
            res = tool("events", "--since", starts[who], "--until", until, "--filter", f"volume={name}",
                       "--format", fmt, check=False)
            seen[who].append((res.returncode, res.stdout, res.stderr.removeprefix("Error: ")))
        tool("volume", "rm", name)
    assert seen["strata"] == seen["docker"]
    assert seen["strata"][0] == (0, "table volume\n", "")
    assert seen["strata"][4][0] == 64
