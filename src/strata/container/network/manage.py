"""``network`` commands' operations: Docker's inspect document, ``ls`` rows and filters, rm and prune
with Docker's rules (a network with running containers cannot go; the predefined ones never)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strata.container.logs import rfc3339nano
from strata.container.network.networks import PREDEFINED, Network, NetworkStore
from strata.container.network.release import finish_releases
from strata.container.records import Container, ContainerStore
from strata.errors import StrataError

__all__ = ["attached", "inspect_network", "list_row", "matches", "prune_networks", "remove_network"]


def attached(containers: list[Container], net: Network) -> list[Container]:
    """Containers with a live endpoint on ``net`` (Docker's active endpoints)."""
    return [c for c in containers if c.netns and any(ep.get("NetworkID") == net.id and ep.get("IPAddress")
                                                     for ep in c.networks.values())]


def inspect_network(net: Network, containers: list[Container]) -> dict[str, Any]:
    members = {}
    for c in attached(containers, net):
        ep = next(ep for ep in c.networks.values() if ep.get("NetworkID") == net.id)
        members[c.id] = {"Name": c.name, "EndpointID": ep.get("EndpointID") or "", "MacAddress": ep.get("MacAddress"),
                         "IPv4Address": f"{ep.get('IPAddress')}/{ep.get('IPPrefixLen')}",
                         "IPv6Address": f"{ep['GlobalIPv6Address']}/{ep.get('GlobalIPv6PrefixLen')}"
                         if ep.get("GlobalIPv6Address") else ""}
    default = net.name in PREDEFINED
    options = None if default else dict(net.ipam_options or {})
    return {
        "Name": net.name, "Id": net.id, "Created": rfc3339nano(net.created), "Scope": "local",
        "Driver": net.driver, "EnableIPv6": net.ipv6,
        "IPAM": {"Driver": net.ipam_driver, "Options": options, "Config": _ipam_configs(net)},
        "Internal": net.internal, "Attachable": net.attachable, "Ingress": False,
        "ConfigFrom": {"Network": net.config_from}, "ConfigOnly": net.config_only, "Containers": members,
        "Options": dict(net.options), "Labels": dict(net.labels),
    }


def _ipam_configs(net: Network) -> list[dict[str, Any]]:
    """IPAM.Config as Docker lists it: IPv4 then IPv6; a range, gateway and aux addresses when given."""
    out = []
    for subnet, rng, gw, show, aux in ((net.subnet, net.ip_range, net.gateway, net.show_gateway, net.aux),
                                       (net.subnet6, net.ip_range6, net.gateway6, net.show_gateway6, net.aux6)):
        if not subnet:
            continue
        doc: dict[str, Any] = {"Subnet": subnet}
        if rng:
            doc["IPRange"] = rng
        if show and gw:
            doc["Gateway"] = gw
        if aux:
            doc["AuxiliaryAddresses"] = dict(sorted(aux.items()))
        out.append(doc)
    return out


def list_row(net: Network, trunc: bool) -> dict[str, str]:
    """``network ls``'s fields (its --format keys)."""
    import time

    return {
        "ID": net.short_id if trunc else net.id, "Name": net.name, "Driver": net.driver, "Scope": "local",
        "IPv6": str(net.ipv6).lower(), "Internal": str(net.internal).lower(),
        "Labels": ",".join(f"{k}={v}" for k, v in net.labels.items()),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(net.created)),
    }


_KEYS = ("driver", "id", "label", "name", "scope", "type", "dangling")


def _one(net: Network, key: str, value: str, containers: list[Container]) -> bool:
    if key == "driver":
        return net.driver == value
    if key == "id":
        return net.id.startswith(value)
    if key == "name":
        return value in net.name
    if key == "scope":
        return value == "local"
    if key == "type":
        if value not in ("custom", "builtin"):
            raise StrataError(f"invalid filter: 'type'='{value}'")
        return (net.name in PREDEFINED) == (value == "builtin")
    if key == "dangling":
        return (not attached(containers, net) and net.name not in PREDEFINED) == (value.lower() in ("true", "1"))
    k, eq, v = value.partition("=")
    return k in net.labels and (not eq or net.labels[k] == v)


def matches(net: Network, filters: list[str], containers: list[Container]) -> bool:
    """Docker's network filters: values of one key OR'ed, keys AND'ed."""
    by_key: dict[str, list[str]] = {}
    for item in filters:
        key, eq, value = item.partition("=")
        if not eq:
            raise StrataError(f"bad format of filter (expected name=value): {item}")
        if key not in _KEYS:
            raise StrataError(f"Invalid filter '{key}'")
        by_key.setdefault(key, []).append(value)
    return all(any(_one(net, k, v, containers) for v in vs) for k, vs in by_key.items())


def remove_network(root: Path, store: ContainerStore, net: Network) -> None:
    nets = NetworkStore(root)
    if net.name in PREDEFINED:
        raise StrataError(f"{net.name} is a pre-defined network and cannot be removed", exit_code=1)
    with nets.locked():
        finish_releases(root)
        if attached(store.all(), net):
            raise StrataError(f"error while removing network: network {net.name} id {net.id} has active endpoints")
        if _template_in_use(nets, net):
            raise StrataError(f'error while removing network: configuration network "{net.name}" is in use')
        nets.remove(net)


def _template_in_use(nets: NetworkStore, net: Network) -> bool:
    """A config-only network some ``--config-from`` network was made from."""
    return net.config_only and any(n.config_from == net.name for n in nets.all())


def prune_networks(root: Path, store: ContainerStore, filters: list[str]) -> list[str]:
    """Remove every user network no running container is on; their names."""
    nets = NetworkStore(root)
    removed = []
    with nets.locked():
        containers = store.all()
        for net in nets.all():
            if net.name in PREDEFINED or attached(containers, net) or not matches(net, filters, containers):
                continue
            if _template_in_use(nets, net):
                continue
            nets.remove(net)
            removed.append(net.name)
            from strata.events import record_network

            record_network(root, "destroy", net.id, net.name)
    return removed
