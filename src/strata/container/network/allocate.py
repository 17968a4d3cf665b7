"""Addresses and host ports for a container, chosen against what the other records hold.

Called under the networks' lock, and the choice is recorded before it is used, so two strata
processes never hand out the same address or port. Errors are Docker's.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from pathlib import Path
from typing import Any

from strata.container.network.ipam import first_free
from strata.container.network.networks import Network
from strata.container.network.ports import Mapping
from strata.container.records import Container
from strata.errors import StrataError

__all__ = ["allocate_ip", "allocate_ip6", "allocate_ports", "endpoint_addresses", "ephemeral_range", "mac_for"]


def mac_for(ip: str) -> str:
    """Docker's generated MAC address: 02:42 and the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def allocate_ip(net: Network, wanted: str, others: list[Container]) -> str:
    """``wanted`` if free, else the first free address of the range (or subnet) after the gateway;
    the aux addresses are never handed out."""
    used = {str(ep.get("IPAddress")) for o in others for ep in o.networks.values()
            if ep.get("NetworkID") == net.id and ep.get("IPAddress")}
    used |= {net.gateway, *net.aux.values()}
    return _pick_address(net, wanted, used, net.subnet, net.ip_range, "IPv4")


def allocate_ip6(net: Network, wanted: str, others: list[Container]) -> str:
    """The IPv6 address of an endpoint on a network with IPv6 enabled (as :func:`allocate_ip`)."""
    used = {str(ep.get("GlobalIPv6Address")) for o in others for ep in o.networks.values()
            if ep.get("NetworkID") == net.id and ep.get("GlobalIPv6Address")}
    used |= {net.gateway6, *net.aux6.values()}
    if wanted:
        wanted = str(ipaddress.ip_address(wanted))  # one spelling of the address
    return _pick_address(net, wanted, used, net.subnet6, net.ip_range6, "IPv6")


def endpoint_addresses(net: Network, ep: dict[str, Any], others: list[Container]) -> dict[str, Any]:
    """The live fields of endpoint ``ep`` on ``net``: its addresses (IPv6 too where the network has it
    enabled), gateways, a new endpoint ID, the MAC from the IPv4 address."""
    ipam = ep.get("IPAMConfig") or {}
    ip = allocate_ip(net, str(ipam.get("IPv4Address") or ""), others)
    out: dict[str, Any] = {"IPAddress": ip, "Gateway": net.gateway, "IPPrefixLen": net.prefix_len,
                           "NetworkID": net.id, "EndpointID": secrets.token_hex(32), "MacAddress": mac_for(ip)}
    if net.ipv6 and net.subnet6:
        out.update(GlobalIPv6Address=allocate_ip6(net, str(ipam.get("IPv6Address") or ""), others),
                   IPv6Gateway=net.gateway6, GlobalIPv6PrefixLen=ipaddress.ip_network(net.subnet6).prefixlen)
    return out


def _pick_address(net: Network, wanted: str, used: set[str], subnet: str, ip_range: str, family: str) -> str:
    if wanted:
        if wanted in used:
            raise StrataError("Address already in use", exit_code=125)
        return wanted
    found = first_free(subnet, ip_range, used)
    if found is None:
        raise StrataError(f"no available {family} addresses on this network's address pools: {net.name} ({net.id})",
                          exit_code=125)
    return found


def ephemeral_range() -> tuple[int, int]:
    """Docker's dynamic port range: the kernel's ip_local_port_range, else 49153-65535."""
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        if 0 < low <= high <= 65535:
            return low, high
    except (OSError, ValueError):
        pass
    return 49153, 65535


def _clash(a_ip: str, b_ip: str) -> bool:
    return a_ip in ("", "0.0.0.0") or b_ip in ("", "0.0.0.0") or a_ip == b_ip


def _host_sockets(proto: str) -> list[tuple[str, int]]:
    """(address, port) of the host's listening TCP (or bound UDP) sockets, IPv4 and IPv6 ("" = any)."""
    out = []
    for name in (proto, proto + "6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 4 or (proto == "tcp" and f[3] != "0A"):  # 0A: LISTEN
                continue
            addr, _, port = f[1].partition(":")
            any_addr = set(addr) == {"0"}
            ip = "" if any_addr else (socket.inet_ntoa(bytes.fromhex(addr)[::-1]) if len(addr) == 8 else addr)
            out.append((ip, int(port, 16)))
    return out


def _host_free(ip: str, port: int, proto: str) -> bool:
    """No host process listens there (what docker-proxy's bind would trip over). Sockets that merely
    use the port for an outgoing connection do not count: the forward takes precedence over them."""
    return not any(p == port and _clash(a, ip) for a, p in _host_sockets(proto if proto == "udp" else "tcp"))


def _taken(held: list[Mapping], ip: str, port: int, proto: str) -> bool:
    return any(m.protocol == proto and m.host_port == port and _clash(m.host_ip, ip) for m in held)


def _pick(held: list[Mapping], ip: str, first: int, last: int, proto: str) -> int | None:
    for port in range(first, last + 1):
        if not _taken(held, ip, port, proto) and _host_free(ip, port, proto):
            return port
    return None


def allocate_ports(c: Container, others: list[Container], endpoint_id: str) -> list[Mapping]:
    """The container's PortBindings (and ``-P``'s exposed ports) as mappings with real host ports."""
    held = [Mapping.from_json(p) for o in others for p in o.ports]
    bindings: dict[str, list[dict[str, str]]] = dict(c.host_config.get("PortBindings") or {})
    if c.host_config.get("PublishAllPorts"):
        for key in c.config.get("ExposedPorts") or {}:
            bindings.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    prefix = f"driver failed programming external connectivity on endpoint {c.name} ({endpoint_id}): "
    out: list[Mapping] = []
    for key, entries in sorted(bindings.items()):
        port_text, _, proto = key.partition("/")
        for entry in entries or [{"HostIp": "", "HostPort": ""}]:
            ip, host = str(entry.get("HostIp") or ""), str(entry.get("HostPort") or "")
            first, _, last = host.partition("-")
            fixed = bool(host) and not last
            lo, hi = (int(first), int(last or first)) if host else ephemeral_range()
            taken = held + out
            if fixed and _taken(taken, ip, lo, proto or "tcp"):
                raise StrataError(f"{prefix}Bind for {ip or '0.0.0.0'}:{lo} failed: port is already allocated",
                                  exit_code=125)
            if fixed and not _host_free(ip, lo, proto or "tcp"):
                raise StrataError(f"{prefix}Error starting userland proxy: listen {proto or 'tcp'}4 "
                                  f"{ip or '0.0.0.0'}:{lo}: bind: address already in use", exit_code=125)
            port = _pick(taken, ip, lo, hi, proto or "tcp")
            if port is None:
                raise StrataError(f"{prefix}Bind for {ip or '0.0.0.0'}:{host or lo} failed: port is already "
                                  "allocated", exit_code=125)
            out.append(Mapping(ip, port, int(port_text), proto or "tcp"))
    return out
