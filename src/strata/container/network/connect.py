"""``network connect``/``disconnect``: an endpoint added to or removed from a container, set up or
torn down at once (as ``ethN``) when the container runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from strata.atomicfile import write_bytes_atomic
from strata.container.network import netavark
from strata.container.network.allocate import allocate_ports, endpoint_addresses
from strata.container.network.endpoints import (
    EndpointRequest,
    add_link_local,
    bridged,
    check_endpoint,
    endpoint_settings,
    netavark_endpoint,
    netavark_options_of,
)
from strata.container.network.networks import PREDEFINED, Network, NetworkStore
from strata.container.network.ports import Mapping
from strata.container.records import Container, ContainerStore, container_dir
from strata.errors import StrataError
from strata.rootless import is_rootless

__all__ = ["connect", "disconnect"]


def connect(store: ContainerStore, c: Container, net: Network, ip: str, aliases: list[str],
            extra: EndpointRequest | None = None) -> Container:
    """``network connect``: record the endpoint; on a running container, set it up now (ethN)."""
    if net.config_only:
        raise StrataError("cannot create endpoint on configuration-only network")
    extra = extra or EndpointRequest(from_connect=True)
    check_endpoint(net, ip, extra)
    if net.name in c.networks:
        raise StrataError(f"endpoint with name {c.name} already exists in network {net.name}")
    mode = str(c.host_config.get("NetworkMode") or "default")
    if mode in ("host", "none") or mode.startswith("container:") or net.driver != "bridge":
        raise StrataError("container cannot be disconnected from host network or connected to host network"
                          if "host" in (mode, net.name) else
                          "container sharing network namespace with another container or host cannot be "
                          "connected to any other network")
    _check_rootless(mode, net)
    ep = endpoint_settings(net, ip, [*aliases, c.id[:12]] if net.name not in PREDEFINED else None, extra)
    c = store.update(c.id, networks={**c.networks, net.name: ep})
    if not c.running or not c.netns:
        return c
    nets_store = NetworkStore(store.root)
    with nets_store.locked():
        others = [o for o in store.all() if o.id != c.id]
        try:
            ep = {**ep, **endpoint_addresses(net, ep, others)}
        except StrataError as e:  # nothing connected: the endpoint goes, the daemon's answer exits 1
            store.update(c.id, networks={k: v for k, v in c.networks.items() if k != net.name})
            e.exit_code = 1
            raise
        used = {str(e.get("_ifname")) for e in c.networks.values()}
        ep["_ifname"] = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        first = not any(e.get("IPAddress") for k, e in c.networks.items() if k != net.name)
        ports = allocate_ports(c, others, ep["EndpointID"]) if first else []  # eth0 carries -p, as in Docker
        c = store.update(c.id, networks={**c.networks, net.name: ep},
                         ports=[p.to_json() for p in ports] if first else c.ports)
        index = len(c.networks) - 1
        one = netavark.netavark_options(c.id, c.name, [(net, netavark_endpoint(c, net, index))], ports, [])
        try:
            _bring_up(store, c, ep, one, bool(ports))
        except BaseException:
            rest = {k: v for k, v in c.networks.items() if k != net.name}
            store.update(c.id, networks=rest, ports=[] if first else c.ports)
            raise
        _rewrite_options(store, c, nets_store)
    return c


def _bring_up(store: ContainerStore, c: Container, ep: dict[str, Any], one: dict[str, Any], ports: bool) -> None:
    """netavark's setup of the one endpoint, then its link-local addresses and (rootless, with ports) the
    forwarder; a failure after the setup tears it down again."""
    config = store.root / "networks" / "netavark"
    host = _rootless_host(store.root, setup=True)
    netavark.setup(config, Path(c.netns), one, host)
    try:
        add_link_local(Path(c.netns), ep)
        if host is not None and ports:
            _forward(store, c, host, ep)
    except BaseException:
        try:
            netavark.teardown(config, Path(c.netns), one, host=host)
        except StrataError:
            pass  # the first error is the one to report
        raise


def _check_rootless(mode: str, net: Network) -> None:
    """Rootless, the default network is pasta's (no bridge to join or leave): Podman's refusal."""
    if is_rootless() and (mode in ("default", "bridge") or net.name == "bridge"):
        raise StrataError('"pasta" is not supported: invalid network mode')


def _rootless_host(root: Path, setup: bool = False) -> Path | None:
    """The network namespace netavark runs in: the rootless one (made if ``setup``), or None as root."""
    if not is_rootless():
        return None
    from strata.container.network import rootlessnetns

    if setup:
        return rootlessnetns.setup(root)
    path = rootlessnetns.netns_path(root)
    return path if rootlessnetns.is_namespace(path) else None


def _forward(store: ContainerStore, c: Container, host: Path, ep: dict[str, Any]) -> None:
    from strata.container.network import portfwd

    portfwd.start(host, [Mapping.from_json(p) for p in c.ports], str(ep["IPAddress"]),
                  container_dir(store.root, c.id) / portfwd.PID_FILE, f"{c.name} ({ep['EndpointID']})")


def _rewrite_options(store: ContainerStore, c: Container, nets_store: NetworkStore) -> None:
    nets = bridged(c, nets_store)
    write_bytes_atomic(container_dir(store.root, c.id) / "netavark.json",
                       json.dumps(netavark_options_of(c, nets)).encode())


def disconnect(store: ContainerStore, c: Container, net: Network) -> Container:
    """``network disconnect``: tear the endpoint down on a running container, forget it."""
    if net.name not in c.networks:
        the = "" if c.running else "the "  # Docker's two wordings: a live sandbox's, a stored config's
        raise StrataError(f"container {c.id} is not connected to {the}network {net.name}")
    _check_rootless(str(c.host_config.get("NetworkMode") or "default"), net)
    nets_store = NetworkStore(store.root)
    with nets_store.locked():
        c = store.by_id(c.id) or c
        ep = c.networks[net.name]
        first = next(iter(c.networks)) == net.name  # its interface carried the published ports
        if c.netns and ep.get("IPAddress"):
            nets = bridged(c, nets_store)
            index = [n.name for n in nets].index(net.name)
            one = netavark.netavark_options(c.id, c.name, [(net, netavark_endpoint(c, net, index))],
                                            [Mapping.from_json(p) for p in c.ports] if index == 0 else [], [])
            host = _rootless_host(store.root)
            if host is not None or not is_rootless():
                netavark.teardown(store.root / "networks" / "netavark", Path(c.netns), one, host=host)
            if first and is_rootless():
                from strata.container.network import portfwd

                portfwd.stop(container_dir(store.root, c.id) / portfwd.PID_FILE)
        rest = {k: v for k, v in c.networks.items() if k != net.name}
        c = store.update(c.id, networks=rest, ports=[] if first else c.ports)
        if c.netns:
            _rewrite_options(store, c, nets_store)
        if is_rootless():
            from strata.container.network.rootlessnetns import release_unless_used

            release_unless_used(store.root, store.all())
    return c
