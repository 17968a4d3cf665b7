"""Published ports as Docker parses, stores and shows them.

``-p [IP:][HOST:]CONTAINER[/PROTO]`` becomes ``HostConfig.PortBindings`` (``{"80/tcp": [{"HostIp",
"HostPort"}]}``, ranges expanded one port each); a running container's mappings in effect are
:class:`Mapping` records, shown as ``ps``'s PORTS column, ``port`` lines and ``NetworkSettings.Ports``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any

from strata.compat.nat import go_port_range, parse_port_range
from strata.errors import StrataError

__all__ = [
    "Mapping",
    "displayable_ports",
    "exposed_ports",
    "parse_publish",
    "port_lines",
    "settings_ports",
]

_PROTOS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class Mapping:
    """One host port forwarded to one container port (host_ip "" = every address, shown 0.0.0.0)."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mapping:
        return cls(str(data["host_ip"]), int(data["host_port"]), int(data["container_port"]),
                   str(data.get("protocol") or "tcp"))

    @property
    def shown_ip(self) -> str:
        return self.host_ip or "0.0.0.0"


def _error(text: str) -> StrataError:
    return StrataError(text, exit_code=125)


def _split_spec(raw: str) -> tuple[str, str, str, str]:
    """(ip, host port, container port, proto) of one ``-p`` value, as nat.ParsePortSpec splits it."""
    body, _, proto = raw.partition("/")
    proto = proto or "tcp"
    ip = host = ""
    if body.startswith("["):  # [v6]:host:container
        end = body.find("]")
        ip, rest = body[1:end], body[end + 2:]
        host, _, container = rest.rpartition(":")
    else:
        parts = body.split(":")
        if len(parts) > 3:
            raise _error(f"Invalid hostPort: {body}")
        container = parts[-1]
        host = parts[-2] if len(parts) >= 2 else ""
        ip = parts[0] if len(parts) == 3 else ""
    return ip, host, container, proto


def parse_publish(raw: str) -> dict[str, list[dict[str, str]]]:
    """One ``-p`` value as PortBindings entries; Docker's errors (exit 125)."""
    ip, host, container, proto = _split_spec(raw)
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise _error(f"Invalid ip address: {ip}") from None
    if not container:
        raise _error(f"No port specified: {raw}<empty>")
    try:
        first, last = parse_port_range(container)
    except ValueError:
        raise _error(f"Invalid containerPort: {container}") from None
    host_first = host_last = 0
    if host:
        try:
            host_first, host_last = parse_port_range(host)
        except ValueError:
            raise _error(f"Invalid hostPort: {host}") from None
    if host and (last - first) != (host_last - host_first) and last != first:
        raise _error(f"Invalid ranges specified for container and host Ports: {container} and {host}")
    if proto.lower() not in _PROTOS:
        raise _error(f"Invalid proto: {proto}")
    out: dict[str, list[dict[str, str]]] = {}
    for i in range(last - first + 1):
        if not host:
            host_text = ""
        elif last == first:
            host_text = host  # one container port: a host range is where to pick one
        else:
            host_text = str(host_first + i)
        out.setdefault(f"{first + i}/{proto.lower()}", []).append({"HostIp": ip, "HostPort": host_text})
    return out


def exposed_ports(values: list[str]) -> dict[str, dict[str, Any]]:
    """``--expose PORT[/PROTO]`` (ranges too) as Config.ExposedPorts keys."""
    out: dict[str, dict[str, Any]] = {}
    for raw in values:
        port, _, proto = raw.partition("/")
        proto = proto or "tcp"
        try:
            first, last = parse_port_range(port)
        except ValueError:
            raise _error(f"invalid range format for --expose: {raw}, error: strconv.ParseUint: parsing "
                         f'"{port}": invalid syntax') from None
        for p in range(first, last + 1):
            out[f"{p}/{proto.lower()}"] = {}
    return out


def _port_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    return int(port), proto or "tcp"


def settings_ports(exposed: dict[str, Any], mappings: list[Mapping]) -> dict[str, Any]:
    """``NetworkSettings.Ports`` of a running container: every exposed port, null when unpublished."""
    out: dict[str, Any] = {k: None for k in exposed}
    for m in mappings:
        key = f"{m.container_port}/{m.protocol}"
        entries = out.get(key) or []
        entries.append({"HostIp": m.shown_ip, "HostPort": str(m.host_port)})
        out[key] = entries
    return dict(sorted(out.items()))  # a Go map: keys in byte order


def _group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("|")
    text = str(first) if first == last else f"{first}-{last}"
    if ip:
        text = f"{ip}:{text}->{text}"
    return f"{text}/{proto}"


def displayable_ports(exposed: dict[str, Any], mappings: list[Mapping]) -> str:
    """``ps``'s PORTS column (the Docker CLI's DisplayablePorts: equal runs grouped into ranges)."""
    rows: list[tuple[int, str, int, str]] = []
    published = {(m.container_port, m.protocol) for m in mappings}
    for key in exposed:
        port, proto = _port_key(key)
        if (port, proto) not in published:
            rows.append((port, "", 0, proto))
    rows += [(m.container_port, m.shown_ip, m.host_port, m.protocol) for m in mappings]
    rows.sort()
    groups: dict[str, list[int]] = {}
    result: list[str] = []
    host_mappings: list[str] = []
    for private, ip, public, proto in rows:
        if ip and public != private:
            host = f"[{ip}]" if ":" in ip else ip
            host_mappings.append(f"{host}:{public}->{private}/{proto}")
            continue
        key = f"{ip}|{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_group(key, *group))
            groups[key] = [private, private]
    result += [_group(k, *g) for k, g in groups.items()]
    return ", ".join(result + host_mappings)


def port_lines(mappings: list[Mapping], wanted: str | None, name: str) -> list[str]:
    """``docker port``: ``80/tcp -> 0.0.0.0:8080`` lines, or the host addresses of one port."""
    if wanted is None:  # by port, each port's bindings in their order
        ordered = sorted(mappings, key=lambda m: f"{m.container_port}/{m.protocol}")
        return [f"{m.container_port}/{m.protocol} -> {m.shown_ip}:{m.host_port}" for m in ordered]
    port, _, proto = wanted.partition("/")
    proto = proto or "tcp"
    try:
        first, last = go_port_range(port)  # the CLI's nat.NewPort: its errors as they are
    except ValueError as e:
        raise StrataError(str(e)) from None
    found = [f"{m.shown_ip}:{m.host_port}" for m in mappings
             if first == last and (m.container_port, m.protocol) == (first, proto)]
    if not found:
        raise StrataError(f"No public port '{port}/{proto}' published for {name}")
    return found
