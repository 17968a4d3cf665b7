"""``network create`` as Docker 20.10's daemon does it for local networks: the driver, scope and swarm
checks, config-only networks (templates) and networks made from them (``--config-from``), the IPAM
(``ipam``) of the IPv4 pool and, with ``--ipv6``, the IPv6 one; Docker's errors in its order."""

from __future__ import annotations

import ipaddress
import secrets
import time
from dataclasses import dataclass, field

from strata.container.network import ipam
from strata.container.network.networks import Network, NetworkStore
from strata.errors import Conflict, StrataError

__all__ = ["CreateRequest", "create_network"]

_SWARM = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node '
          "to swarm and try again.")


@dataclass
class CreateRequest:
    """What ``network create`` was asked for."""

    name: str
    driver: str = "bridge"
    pools: list[ipam.Pool] = field(default_factory=list)
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    ipv6: bool = False
    scope: str = ""
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ipam_driver: str = "default"
    ipam_options: dict[str, str] = field(default_factory=dict)
    config_only: bool = False
    config_from: str = ""


def _check_request(req: CreateRequest) -> None:
    """The daemon's refusals before any address is looked at."""
    if req.driver == "overlay" and not req.config_only:
        raise StrataError(_SWARM)
    if req.ingress:
        raise StrataError("Ingress network can only be global scope network")
    if req.scope == "swarm":
        raise StrataError("cannot create a swarm scoped network when swarm is not active")
    if req.scope not in ("", "local"):
        raise StrataError(_SWARM)
    if not req.config_only and req.driver in ("host", "null"):  # a template takes any driver (it is null)
        raise StrataError(f'only one instance of "{req.driver}" network is allowed')
    if not req.config_only and req.driver != "bridge":
        raise StrataError(f'plugin "{req.driver}" not found')
    if req.config_only and (req.internal or req.attachable or req.scope):
        raise StrataError("configuration network can only contain network specific fields. Network operator "
                          "fields like [ ingress | internal | attachable | scope ] are not supported.")
    if req.config_from:
        if req.config_only:
            raise StrataError("a configuration network cannot depend on another configuration network")
        if (req.ipam_driver != "default" or req.ipv6 or req.labels or req.ipam_options or req.pools):
            raise StrataError("user specified configurations are not supported if the network depends on a "
                              "configuration network")
        if req.options:
            raise StrataError("network driver options are not supported if the network depends on a "
                              "configuration network")
    ipam.validate_ipam_driver(req.ipam_driver)


def _from_template(req: CreateRequest, nets: list[Network]) -> CreateRequest:
    """``--config-from``: the request with the config-only network's settings (IPAM, IPv6, options,
    labels), as libnetwork applies them."""
    tmpl = next((n for n in nets if n.config_only and req.config_from in (n.name, n.id)), None)
    if tmpl is None:
        raise StrataError(f'configuration network "{req.config_from}" does not exist')
    pools = []
    if tmpl.subnet:
        pools.append(ipam.Pool(tmpl.subnet, tmpl.ip_range, tmpl.gateway if tmpl.show_gateway else "",
                               dict(tmpl.aux)))
    if tmpl.subnet6:
        pools.append(ipam.Pool(tmpl.subnet6, tmpl.ip_range6, tmpl.gateway6 if tmpl.show_gateway6 else "",
                               dict(tmpl.aux6)))
    return CreateRequest(
        name=req.name, driver=req.driver, pools=pools, internal=req.internal, attachable=req.attachable,
        ipv6=tmpl.ipv6, options=dict(tmpl.options), labels=dict(tmpl.labels), ipam_driver=tmpl.ipam_driver,
        ipam_options=dict(tmpl.ipam_options or {}), config_from=tmpl.name,
    )


def _address_space(req: CreateRequest, nets: list[Network], store: NetworkStore) -> dict[str, object]:
    """The Network fields of the request's pools: the IPv4 pool (given or the first free one) and the
    IPv6 pool; a config-only network keeps what was given, unchecked and unreserved."""
    v4 = [p for p in req.pools if p.version == 4]
    v6 = [p for p in req.pools if p.version == 6]
    if len(v4) > 1 or len(v6) > 1:
        raise StrataError("bridge driver doesn't support multiple subnets")
    if req.config_only:
        return _template_space(v4, v6)
    taken: list[ipam.IPNetwork] = [ipaddress.ip_network(s) for n in nets if not n.config_only
                                   for s in (n.subnet, n.subnet6) if s]
    out: dict[str, object] = {}
    if v4:
        out["subnet"], out["gateway"] = ipam.pool_of(v4[0], taken)
        out.update(ip_range=v4[0].ip_range, aux=dict(v4[0].aux), show_gateway=bool(v4[0].gateway))
    else:
        subnet = store.free_subnet(nets)
        out.update(subnet=subnet, gateway=ipam.gateway_of(subnet), show_gateway=True, user_subnet=False)
    if v6:
        out["subnet6"], out["gateway6"] = ipam.pool_of(v6[0], taken)
        out.update(ip_range6=v6[0].ip_range, aux6=dict(v6[0].aux), show_gateway6=bool(v6[0].gateway))
    elif req.ipv6:
        raise StrataError("could not find an available, non-overlapping IPv6 address pool among the defaults to "
                          "assign to the network")
    return out


def _template_space(v4: list[ipam.Pool], v6: list[ipam.Pool]) -> dict[str, object]:
    out: dict[str, object] = {"user_subnet": bool(v4)}
    if v4:
        p = v4[0]
        out.update(subnet=p.subnet, gateway=p.gateway, show_gateway=bool(p.gateway), ip_range=p.ip_range,
                   aux=dict(p.aux))
    if v6:
        p = v6[0]
        out.update(subnet6=p.subnet, gateway6=p.gateway, show_gateway6=bool(p.gateway), ip_range6=p.ip_range,
                   aux6=dict(p.aux))
    return out


def create_network(store: NetworkStore, req: CreateRequest) -> Network:
    """A new user-defined network (bridge with name resolution, or a config-only template)."""
    _check_request(req)
    with store.locked():
        nets = store.all()
        if any(n.name == req.name for n in nets):
            raise Conflict(f"network with name {req.name} already exists")
        if req.config_from:
            req = _from_template(req, nets)
        space = _address_space(req, nets, store)
        nid = secrets.token_hex(32)
        iface = "" if req.config_only else (req.options.get("com.docker.network.bridge.name") or f"br-{nid[:12]}")
        net = Network(name=req.name, id=nid, driver="null" if req.config_only else "bridge", created=time.time(),
                      interface=iface, internal=req.internal, dns=not req.config_only, options=dict(req.options),
                      labels=dict(req.labels), ipv6=req.ipv6, attachable=req.attachable,
                      config_only=req.config_only, config_from=req.config_from, ipam_driver=req.ipam_driver,
                      ipam_options=dict(req.ipam_options), **space)  # type: ignore[arg-type]
        store.save(net)
        return net
