"""``network`` commands: create, ls, inspect, rm, prune, connect, disconnect (Docker's output)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from strata.errors import StrataError

if TYPE_CHECKING:
    from strata.cli.main import Context
    from strata.container.records import ContainerStore

__all__ = ["inspect_doc", "register"]


def _stores(ctx: Context) -> tuple[Any, ContainerStore]:
    from strata.container.network.networks import NetworkStore
    from strata.container.records import ContainerStore

    root = ctx.engine().root
    return NetworkStore(root), ContainerStore(root)


def _options(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _cmd_create(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.network.define import CreateRequest, create_network
    from strata.container.network.ipam import consolidate

    nets, store = _stores(ctx)
    store.close()
    pools = consolidate(_split(args.subnet), _split(args.ip_range), _split(args.gateway),  # pflag strings
                        _options(args.aux_address, "--aux-address"))
    req = CreateRequest(
        name=args.name, driver=args.driver, pools=pools, internal=args.internal, attachable=args.attachable,
        ingress=args.ingress, ipv6=args.ipv6, scope=args.scope, options=_options(args.opt, "--opt"),
        labels=_options(args.label, "--label"), ipam_driver=args.ipam_driver,
        ipam_options=_options(args.ipam_opt, "--ipam-opt"), config_only=args.config_only,
        config_from=args.config_from,
    )
    net = create_network(nets, req)
    _record(ctx.engine().root, "create", net)
    print(net.id, file=ctx.out)
    return 0


def _record(root: Any, action: str, net: Any, container: str | None = None) -> None:
    from strata.events import record_network

    record_network(root, action, net.id, net.name, container)


_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
            "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


def _label_of(labels: dict[str, str]) -> Any:
    """A context's ``Label`` method: one label's value, "" when it has none."""
    return lambda name: str(labels.get(name, ""))


def _sub_header(name: str) -> str:
    """Docker's SubHeaderContext.Label: the key's last dotted part, - and _ as spaces."""
    return name.split(".")[-1].replace("-", " ").replace("_", " ")


def _cmd_ls(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.format import render_table
    from strata.container.network.manage import list_row, matches

    nets, store = _stores(ctx)
    with store:
        containers = store.all()
        chosen = [n for n in nets.all() if matches(n, args.filter, containers)]
    rows: list[dict[str, Any]] = [{**list_row(n, not args.no_trunc), "Label": _label_of(n.labels)} for n in chosen]
    if args.quiet and args.format in (None, "", "table"):  # a --format of its own wins over -q
        for r in rows:
            print(r["ID"], file=ctx.out)
        return 0
    if args.format:
        from strata.cli.output import write_format

        write_format(ctx, args.format, rows, {**_HEADERS, "Label": _sub_header}, "*network.networkContext")
        return 0
    keys = ["ID", "Name", "Driver", "Scope"]
    ctx.out.write(render_table([_HEADERS[k] for k in keys], [[r[k] for k in keys] for r in rows]))
    return 0


def _cmd_inspect(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.output import write_inspected
    from strata.container.lifecycle import reconcile
    from strata.container.network.manage import inspect_network

    nets, store = _stores(ctx)
    docs, errors = [], []
    with store:
        containers = [reconcile(store, c) for c in store.all()]
        for ref in args.networks:
            try:
                docs.append(inspect_network(nets.get(ref), containers))
            except StrataError as e:
                errors.append(f"Error: {e}")
    write_inspected(ctx, docs, args.format)
    ctx.out.flush()  # Docker's CLI: what was found first, then the errors
    ctx.err.write("".join(f"{e}\n" for e in errors))
    return 1 if errors else 0


def inspect_doc(engine: Any, ref: str) -> dict[str, Any] | None:
    """``inspect NAME``'s network document (the generic inspect's third try), or None."""
    from strata.container.lifecycle import reconcile
    from strata.container.network.manage import inspect_network
    from strata.container.network.networks import NetworkStore
    from strata.container.records import ContainerStore

    try:
        net = NetworkStore(engine.root).get(ref)
    except StrataError:
        return None
    with ContainerStore(engine.root) as store:
        return inspect_network(net, [reconcile(store, c) for c in store.all()])


def _cmd_rm(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.lifecycle import reconcile
    from strata.container.network.manage import remove_network

    nets, store = _stores(ctx)
    failed = False
    with store:
        for c in store.all():
            reconcile(store, c)
        for ref in args.networks:
            try:
                net = nets.get(ref)
                remove_network(store.root, store, net)
                _record(store.root, "destroy", net)
                print(ref, file=ctx.out)
            except StrataError as e:
                failed = True
                print(f"Error: {e}", file=ctx.err)
    return 1 if failed else 0


def _cmd_prune(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.lifecycle import reconcile
    from strata.container.network.manage import prune_networks

    if not args.force:
        ctx.out.write("WARNING! This will remove all custom networks not used by at least one container.\n"
                      "Are you sure you want to continue? [y/N] ")
        ctx.out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from strata.compat.filters import parse_filters

    parse_filters(args.filter, frozenset({"until", "label", "label!"}))  # the daemon's: Invalid filter 'x'
    _, store = _stores(ctx)
    with store:
        for c in store.all():
            reconcile(store, c)
        removed = prune_networks(store.root, store, args.filter)
    if removed:
        print("Deleted Networks:\n" + "".join(f"{n}\n" for n in removed), file=ctx.out)
    return 0


def _network_for(nets: Any, ref: str) -> Any:
    """The network ``connect``/``disconnect`` name, missing in the daemon's words for them."""
    from strata.errors import NotFound

    try:
        return nets.get(ref)
    except NotFound:
        raise StrataError(f"network {ref} not found") from None


def _split(values: list[str]) -> list[str]:
    """A pflag ``strings`` flag: each value split at commas."""
    return [v for value in values for v in value.split(",")]


def _endpoint_request(args: argparse.Namespace) -> Any:
    from strata.container.network.endpoints import EndpointRequest

    opts = {}
    for item in _split(args.driver_opt):
        key, eq, value = item.partition("=")
        if not eq:
            raise StrataError("invalid key/value pair format in driver options")
        opts[key.strip()] = value.strip()  # as Docker 20.10 keeps it
    return EndpointRequest(ip6=args.ip6, link_local=_split(args.link_local_ip), links=list(args.link),
                           driver_opts=opts, from_connect=True)


def _cmd_connect(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.lifecycle import reconcile
    from strata.container.network.connect import connect

    nets, store = _stores(ctx)
    with store:
        net = _network_for(nets, args.network)
        c = reconcile(store, store.get(args.container))
        c = connect(store, c, net, args.ip, _split(args.alias), _endpoint_request(args))
        if c.running:  # a stopped container's endpoint is connected (and logged) when it starts
            _record(store.root, "connect", net, c.id)
            from strata.container.links import connect_links

            connect_links(store, c, net.name)
    return 0


def _cmd_disconnect(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.lifecycle import reconcile
    from strata.container.network.connect import disconnect

    nets, store = _stores(ctx)
    with store:
        net = _network_for(nets, args.network)
        c = reconcile(store, store.get(args.container))
        running = c.running
        disconnect(store, c, net)
        for _ in range(2 if running else 1):  # Docker 20.10 logs a live endpoint's disconnect twice
            _record(store.root, "disconnect", net, c.id)
    return 0


def _add(sub: Any, name: str, handler: Any, text: str, **kw: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text, **kw)
    p.set_defaults(func=handler)
    return p


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("network", help="Manage networks", description="Manage networks")
    sub = group.add_subparsers(dest="network_command", metavar="COMMAND", parser_class=type(group))
    p = _add(sub, "create", _cmd_create, "Create a network")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", action="append", default=[])
    p.add_argument("--gateway", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--attachable", action="store_true")
    p.add_argument("--aux-address", action="append", default=[])
    p.add_argument("--config-from", default="")
    p.add_argument("--config-only", action="store_true")
    p.add_argument("--ingress", action="store_true")
    p.add_argument("--ip-range", action="append", default=[])
    p.add_argument("--ipam-driver", default="default")
    p.add_argument("--ipam-opt", action="append", default=[])
    p.add_argument("--ipv6", action="store_true")
    p.add_argument("--scope", default="")
    p.add_argument("name")
    p = _add(sub, "ls", _cmd_ls, "List networks", aliases=["list"])
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p = _add(sub, "inspect", _cmd_inspect, "Display detailed information on one or more networks")
    p.add_argument("-f", "--format")
    p.add_argument("-v", "--verbose", action="store_true")  # local networks: the same document
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    p = _add(sub, "rm", _cmd_rm, "Remove one or more networks", aliases=["remove"])
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    p = _add(sub, "prune", _cmd_prune, "Remove all unused networks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    for name, handler, text in (("connect", _cmd_connect, "Connect a container to a network"),
                                ("disconnect", _cmd_disconnect, "Disconnect a container from a network")):
        p = _add(sub, name, handler, text)
        if name == "connect":
            p.add_argument("--ip", default="")
            p.add_argument("--alias", action="append", default=[])
            p.add_argument("--ip6", default="")
            p.add_argument("--link", action="append", default=[])
            p.add_argument("--link-local-ip", action="append", default=[])
            p.add_argument("--driver-opt", action="append", default=[])
        else:
            p.add_argument("-f", "--force", action="store_true")
        p.add_argument("network")
        p.add_argument("container")
