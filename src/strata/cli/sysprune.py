"""``strata system prune``: Docker's prompt, then containers, networks, volumes (``--volumes``) and
images pruned as their own prune commands prune them, each section printed as Docker prints it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from strata.errors import StrataError

if TYPE_CHECKING:
    from pathlib import Path

    from strata.cli.main import Context

__all__ = ["cmd_prune"]


def _prune_warning(args: argparse.Namespace) -> str:
    items = ["all stopped containers", "all networks not used by at least one container"]
    if args.volumes:
        items.append("all volumes not used by at least one container")
    items += (["all images without at least one container associated to them", "all build cache"] if args.all
              else ["all dangling images", "all dangling build cache"])
    text = "WARNING! This will remove:\n" + "".join(f"  - {x}\n" for x in items)
    shown = _prune_filters_shown(args.filter)
    if shown:
        text += "\n  Items to be pruned will be filtered with:\n" + "".join(f"  - {f}\n" for f in shown)
    return text + "\nAre you sure you want to continue? [y/N] "


def _prune_filters_shown(items: list[str]) -> list[str]:
    """The filters Docker's prompt lists: label, label! and until (no others), in natural sort order."""
    import re

    shown = []
    for item in items:
        key, eq, value = item.partition("=")
        if eq and key.strip().lower() in ("label", "label!", "until") and f"{key}={value}" not in shown:
            shown.append(f"{key.strip().lower()}={value}")

    def natural(text: str) -> list[Any]:
        return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]

    return sorted(shown, key=natural)


def _prune_containers(root: Path, filters: list[str]) -> tuple[list[str], int]:
    from strata.container import lifecycle as lc
    from strata.container.changes import rw_size
    from strata.container.filters import PRUNE_KEYS, matcher, parse_filters
    from strata.container.records import ContainerStore, container_dir

    def no_reference(ref: str) -> Any:  # prune's filters (until, label) name no other container
        raise StrataError(f"no such container {ref}")

    wanted = matcher(parse_filters(filters, PRUNE_KEYS), no_reference, None)
    deleted, reclaimed = [], 0
    with ContainerStore(root) as store:
        for c in store.all():
            c = lc.reconcile(store, c)
            if c.running or c.state == "restarting" or not wanted(c):
                continue
            size = rw_size(container_dir(root, c.id), c.driver)
            try:
                lc.remove(store, c)
            except StrataError:
                continue
            deleted.append(c.id)
            reclaimed += size
    return deleted, reclaimed


def _prune_networks(root: Path, filters: list[str]) -> list[str]:
    from strata.container.network.manage import prune_networks
    from strata.container.records import ContainerStore

    with ContainerStore(root) as store:
        return prune_networks(root, store, filters)


def _prune_volumes(root: Path, filters: list[str]) -> tuple[list[str], int]:
    from strata.cli.volume import prune_volumes
    from strata.compat.filters import parse_filters
    from strata.container.records import ContainerStore
    from strata.container.volumes import VolumeStore

    with ContainerStore(root) as store:
        return prune_volumes(VolumeStore(root), store, parse_filters(filters, frozenset({"label", "label!"})))


def cmd_prune(args: argparse.Namespace, ctx: Context) -> int:
    """Docker's ``system prune``: containers, networks, volumes (``--volumes``), images, each section
    printed as its own prune prints it, then the sum."""
    from strata.cli.format import human_size
    from strata.ops import images as ops

    if args.volumes and any(item.partition("=")[0].strip().lower() == "until" for item in args.filter):
        raise StrataError('ERROR: The "until" filter is not supported with "--volumes"')  # the CLI's check
    if not args.force:
        ctx.out.write(_prune_warning(args))
        ctx.out.flush()
        if ctx.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    root = ctx.engine().root
    total = 0
    containers, space = _prune_containers(root, args.filter)
    space_by_type = {"container": space}
    total += space
    if containers:
        print("Deleted Containers:\n" + "".join(f"{c}\n" for c in containers), file=ctx.out)
    networks = _prune_networks(root, args.filter)
    if networks:
        print("Deleted Networks:\n" + "".join(f"{n}\n" for n in networks), file=ctx.out)
    if args.volumes:
        volumes, space = _prune_volumes(root, args.filter)
        space_by_type["volume"] = space
        total += space
        if volumes:
            print("Deleted Volumes:\n" + "".join(f"{v}\n" for v in volumes), file=ctx.out)
    before = {str(s.id): [r.familiar_string() for r in s.refs] for s in ctx.engine().summaries()}
    lines, space = ops.prune(ctx.engine(), all_images=args.all, filters=list(args.filter))
    from strata.cli.images import image_prune_events

    image_prune_events(root, before, lines, None)  # its "prune" event is recorded with the others below
    space_by_type["image"] = space
    total += space
    if lines:
        print("Deleted Images:\n" + "".join(f"{kind.lower()}: {text}\n" for kind, text in lines), file=ctx.out)
    _prune_events(root, args.volumes, space_by_type)
    print(f"Total reclaimed space: {human_size(total, 4)}", file=ctx.out)
    return 0


def _prune_events(root: Path, volumes: bool, reclaimed: dict[str, int]) -> None:
    """Docker's daemon logs one ``prune`` event per kind pruned (no actor, ``reclaimed`` bytes)."""
    from strata.events import record

    for kind in ("container", "network", *(("volume",) if volumes else ()), "image", "builder"):
        record(root, kind, "prune", "", {"reclaimed": str(reclaimed.get(kind, 0))})
