"""A network's address pools as Docker 20.10 builds them from ``network create``'s flags.

The client's consolidation (each ``--ip-range``, ``--gateway`` and ``--aux-address`` given to the
``--subnet`` that contains it) and the daemon's default IPAM: one pool per address family, a gateway
(the first usable address of the range, else of the subnet), the auxiliary addresses reserved.
Errors are Docker's, in its order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field

from strata.errors import StrataError

__all__ = ["Pool", "consolidate", "first_free", "gateway_of", "pool_of", "validate_ipam_driver"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Pool:
    """One ``IPAM.Config`` entry as the client sends it."""

    subnet: str
    ip_range: str = ""
    gateway: str = ""
    aux: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> int:
        """4 or 6 (a subnet that does not parse counts by its spelling: the daemon's error comes later)."""
        try:
            return ipaddress.ip_network(self.subnet, strict=False).version
        except ValueError:
            return 6 if ":" in self.subnet else 4


def _contains(subnet: str, data: str) -> bool:
    """Docker's CLI subnetMatches: is ``data`` (an address or a CIDR's address) inside ``subnet``."""
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise StrataError(f"invalid subnet: invalid CIDR address: {subnet}") from None
    try:
        ip = ipaddress.ip_interface(data).ip if "/" in data else ipaddress.ip_address(data)
    except ValueError:
        if "/" in data:
            raise StrataError(f"invalid CIDR address: {data}") from None
        return False
    return ip.version == net.version and ip in net


def _place(pools: dict[str, Pool], value: str, what: str, attr: str) -> None:
    """``value`` (a range or gateway) onto the one subnet containing it."""
    match = False
    for subnet, pool in pools.items():
        if not _contains(subnet, value):
            continue
        if getattr(pool, attr):
            plural = "ranges" if attr == "ip_range" else "gateways"
            on = "on" if attr == "ip_range" else "for"
            raise StrataError(f"cannot configure multiple {plural} ({value}, {getattr(pool, attr)}) {on} the same "
                              f"subnet ({subnet})")
        setattr(pool, attr, value)
        match = True
    if not match:
        raise StrataError(f"no matching subnet for {what} {value}")


def consolidate(subnets: list[str], ranges: list[str], gateways: list[str], aux: dict[str, str]) -> list[Pool]:
    """The client's IPAM configs (its errors), IPv4 first then IPv6 (as the daemon keeps them)."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise StrataError("every ip-range or gateway must have a corresponding subnet")
    pools: dict[str, Pool] = {}
    for s in subnets:
        for k in pools:
            if _contains(s, k.split("/")[0]) or _contains(k, s.split("/")[0]):
                raise StrataError("multiple overlapping subnet configuration is not allowed")
        pools[s] = Pool(s)
    for r in ranges:
        _place(pools, r, "range", "ip_range")
    for g in gateways:
        _place(pools, g, "gateway", "gateway")
    for key, addr in aux.items():
        hits = [p for s, p in pools.items() if _contains(s, addr)]
        if not hits:
            raise StrataError(f"no matching subnet for aux-address {addr}")
        for p in hits:
            p.aux[key] = addr
    out = list(pools.values())
    return [p for p in out if p.version == 4] + [p for p in out if p.version == 6]


def validate_ipam_driver(driver: str) -> None:
    """Only the built-in ``default`` IPAM works here; ``null`` has no IPv4 pool; others are plugins."""
    if driver == "null":
        raise StrataError("ipv4 pool is empty")
    if driver != "default":
        raise StrataError(f'plugin "{driver}" not found')


def _candidates(subnet: str, ip_range: str) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The usable addresses of ``subnet`` (its network and broadcast addresses left out), in ``ip_range``
    when one is set, in order."""
    net = ipaddress.ip_network(subnet, strict=False)
    rng = ipaddress.ip_network(ip_range, strict=False) if ip_range else net
    for ip in rng:
        if ip == net.network_address or (net.version == 4 and ip == net.broadcast_address):
            continue
        yield ip


def gateway_of(subnet: str, ip_range: str = "") -> str:
    """The daemon's gateway when none is given: the first usable address of the range (or subnet)."""
    for ip in _candidates(subnet, ip_range):
        return str(ip)
    raise StrataError("no available addresses on this pool")


def first_free(subnet: str, ip_range: str, used: set[str]) -> str | None:
    """The first address of the range (else the subnet) nobody holds, or None."""
    for ip in _candidates(subnet, ip_range):
        if str(ip) not in used:
            return str(ip)
    return None


def pool_of(p: Pool, taken: list[IPNetwork]) -> tuple[str, str]:
    """(subnet, gateway) of a user-given pool, checked against the pools other networks hold."""
    try:
        net = ipaddress.ip_network(p.subnet, strict=False)
    except ValueError:
        raise StrataError(f"Invalid subnet {p.subnet} : invalid CIDR address: {p.subnet}") from None
    if any(net.overlaps(t) for t in taken if t.version == net.version):  # type: ignore[arg-type]
        raise StrataError("Pool overlaps with other one on this address space")
    if p.gateway:
        try:
            gw = ipaddress.ip_address(p.gateway)
        except ValueError:
            raise StrataError(f"invalid gateway address {p.gateway}") from None
        if gw not in net:
            raise StrataError(f"no matching subnet for gateway {p.gateway}")
        gateway = str(gw)
    else:
        gateway = gateway_of(str(net), p.ip_range)
    for key, addr in sorted(p.aux.items()):
        if addr == gateway:
            raise StrataError(f"failed to allocate secondary ip address ({key}:{addr}): Address already in use")
    return str(net), gateway
