"""A container's ``HostConfig`` and ``NetworkSettings`` as the Docker 20.10 CLI's structs (``container.HostConfig``
with its embedded ``Resources``; ``NetworkSettings`` with ``NetworkSettingsBase``, ``DefaultNetworkSettings``
and a map of ``*EndpointSettings``), so that ``{{.HostConfig}}`` prints Go's ``%v`` of them and
``{{json .HostConfig}}`` the CLI's re-encoding (its field order, its ``omitempty`` fields left out).

A field is ``(Go name, JSON name, kind, omitempty)``. Kinds: ``s`` string, ``b`` bool, ``i`` int, ``[]``
slice, ``map``, ``*`` pointer (printed as an address inside a struct, ``<nil>`` when null), ``[]*`` slice of
pointers, or the name of a nested struct in ``_NESTED``."""

from __future__ import annotations

from typing import Any

from strata.gotemplate import NIL_MAP, NIL_SLICE, Pointer, Struct
from strata.gotemplate.values import MISSING, GoMap, Nil

__all__ = ["host_config_struct", "network_settings_struct"]

_NIL = Nil("<nil>")
Field = tuple[str, str, str, bool]


def _fields(text: str) -> tuple[Field, ...]:
    """``"Go[>json]:kind[?]"`` entries (``?``: omitempty) separated by spaces."""
    out: list[Field] = []
    for item in text.split():
        names, _, kind = item.partition(":")
        go, _, json = names.partition(">")
        out.append((go, json or go, kind.rstrip("?"), kind.endswith("?")))
    return tuple(out)


_RESOURCES = _fields(
    "CPUShares>CpuShares:i Memory:i NanoCPUs>NanoCpus:i CgroupParent:s BlkioWeight:i "
    "BlkioWeightDevice:[]*WeightDevice BlkioDeviceReadBps:[]*ThrottleDevice BlkioDeviceWriteBps:[]*ThrottleDevice "
    "BlkioDeviceReadIOps:[]*ThrottleDevice BlkioDeviceWriteIOps:[]*ThrottleDevice CPUPeriod>CpuPeriod:i "
    "CPUQuota>CpuQuota:i CPURealtimePeriod>CpuRealtimePeriod:i CPURealtimeRuntime>CpuRealtimeRuntime:i "
    "CpusetCpus:s CpusetMems:s Devices:[]DeviceMapping DeviceCgroupRules:[] DeviceRequests:[]DeviceRequest "
    "KernelMemory:i KernelMemoryTCP:i MemoryReservation:i MemorySwap:i MemorySwappiness:* OomKillDisable:* "
    "PidsLimit:* Ulimits:[]*Ulimit CPUCount>CpuCount:i CPUPercent>CpuPercent:i IOMaximumIOps:i IOMaximumBandwidth:i"
)
_HOST_CONFIG = _fields(
    "Binds:[] ContainerIDFile:s LogConfig:LogConfig NetworkMode:NetworkMode PortBindings:PortMap "
    "RestartPolicy:RestartPolicy AutoRemove:b VolumeDriver:s VolumesFrom:[] CapAdd:[] CapDrop:[] "
    "CgroupnsMode:CgroupnsMode DNS>Dns:[] DNSOptions>DnsOptions:[] DNSSearch>DnsSearch:[] ExtraHosts:[] GroupAdd:[] "
    "IpcMode:IpcMode Cgroup:CgroupSpec Links:[] OomScoreAdj:i PidMode:PidMode Privileged:b PublishAllPorts:b "
    "ReadonlyRootfs:b SecurityOpt:[] StorageOpt:map? Tmpfs:map? UTSMode:UTSMode UsernsMode:UsernsMode ShmSize:i "
    "Sysctls:map? Runtime:s? ConsoleSize:Console Isolation:Isolation "
    "Resources:Resources Mounts:[]Mount? MaskedPaths:[] ReadonlyPaths:[] Init:*?"
)
_BASE = _fields(
    "Bridge:s SandboxID:s HairpinMode:b LinkLocalIPv6Address:s LinkLocalIPv6PrefixLen:i Ports:PortMap SandboxKey:s "
    "SecondaryIPAddresses:[]Address SecondaryIPv6Addresses:[]Address"
)
_DEFAULT = _fields(
    "EndpointID:s Gateway:s GlobalIPv6Address:s GlobalIPv6PrefixLen:i IPAddress:s IPPrefixLen:i IPv6Gateway:s "
    "MacAddress:s"
)
_ENDPOINT = _fields(
    "IPAMConfig:*EndpointIPAMConfig Links:[] Aliases:[] NetworkID:s EndpointID:s Gateway:s IPAddress:s "
    "IPPrefixLen:i IPv6Gateway:s GlobalIPv6Address:s GlobalIPv6PrefixLen:i MacAddress:s DriverOpts:map"
)
_NESTED: dict[str, tuple[str, tuple[Field, ...]]] = {
    "WeightDevice": ("blkiodev.WeightDevice", _fields("Path:s Weight:i")),
    "ThrottleDevice": ("blkiodev.ThrottleDevice", _fields("Path:s Rate:i")),
    "Ulimit": ("units.Ulimit", _fields("Name:s Hard:i Soft:i")),
    "DeviceMapping": ("container.DeviceMapping", _fields("PathOnHost:s PathInContainer:s CgroupPermissions:s")),
    "DeviceRequest": ("container.DeviceRequest",
                      _fields("Driver:s Count:i DeviceIDs:[] Capabilities:[] Options:map")),
    "Mount": ("mount.Mount", _fields("Type:s? Source:s? Target:s? ReadOnly:b? Consistency:s? BindOptions:*? "
                                     "VolumeOptions:*? TmpfsOptions:*?")),
    "LogConfig": ("container.LogConfig", _fields("Type:s Config:map")),
    "RestartPolicy": ("container.RestartPolicy", _fields("Name:s MaximumRetryCount:i")),
    "Address": ("network.Address", _fields("Addr:s PrefixLen:i")),
    "EndpointIPAMConfig": ("network.EndpointIPAMConfig",
                           _fields("IPv4Address:s? IPv6Address:s? LinkLocalIPs:[]?")),
    "PortBinding": ("nat.PortBinding", _fields("HostIP>HostIp:s HostPort:s")),
    "Resources": ("container.Resources", _RESOURCES),
}
_ZERO_JSON: dict[str, Any] = {"s": "", "b": False, "i": 0}


class _GoString(str):
    """A value of a named Go string type (``container.NetworkMode``): a string, whose methods a template
    can call (``{{.HostConfig.NetworkMode.IsHost}}``)."""

    go_type: str
    go_methods: dict[str, Any]

    def __new__(cls, text: str, go_type: str, methods: dict[str, Any]) -> _GoString:
        out = super().__new__(cls, text)
        out.go_type = go_type
        out.go_methods = {name: (lambda *a, f=f: f(str(out), *a)) for name, f in methods.items()}
        return out


def _container_of(mode: str) -> str:
    """What ``container:<ID>`` names (``""`` for any other mode): Docker's ``Container()`` methods."""
    kind, sep, ref = mode.partition(":")
    return ref if sep and kind == "container" else ""


def _is_container(mode: str) -> bool:
    kind, sep, _ = mode.partition(":")
    return bool(sep) and kind == "container"


def _network_name(n: str) -> str:
    named = {"bridge": "bridge", "host": "host", "none": "none", "default": "default"}
    return named.get(n) or ("container" if _is_container(n) else n)


def _user_defined(n: str) -> bool:
    return n not in ("default", "bridge", "host", "none") and not _is_container(n)


# Docker 20.10's api/types/container methods of its named string types (Linux build)
_MODES: dict[str, dict[str, Any]] = {
    "NetworkMode": {
        "IsNone": lambda n: n == "none", "IsDefault": lambda n: n == "default",
        "IsPrivate": lambda n: not (n == "host" or _is_container(n)), "IsContainer": _is_container,
        "ConnectedContainer": _container_of, "UserDefined": lambda n: n if _user_defined(n) else "",
        "NetworkName": _network_name, "IsBridge": lambda n: n == "bridge", "IsHost": lambda n: n == "host",
        "IsUserDefined": _user_defined,
    },
    "IpcMode": {
        "IsPrivate": lambda n: n == "private", "IsHost": lambda n: n == "host", "IsShareable": lambda n: n == "shareable",
        "IsContainer": _is_container, "IsNone": lambda n: n == "none", "IsEmpty": lambda n: n == "",
        "Valid": lambda n: n in ("", "none", "private", "host", "shareable") or _is_container(n),
        "Container": _container_of,
    },
    "PidMode": {
        "IsPrivate": lambda n: not (n == "host" or _is_container(n)), "IsHost": lambda n: n == "host",
        "IsContainer": _is_container, "Container": _container_of,
        "Valid": lambda n: n.split(":")[0] in ("", "host") or (n.split(":")[0] == "container"
                                                                and len(n.split(":")) == 2 and n.split(":")[1] != ""),
    },
    "UTSMode": {"IsPrivate": lambda n: n != "host", "IsHost": lambda n: n == "host",
                "Valid": lambda n: n.split(":")[0] in ("", "host")},
    "UsernsMode": {"IsHost": lambda n: n == "host", "IsPrivate": lambda n: n != "host",
                   "Valid": lambda n: n.split(":")[0] in ("", "host")},
    "CgroupnsMode": {"IsPrivate": lambda n: n == "private", "IsHost": lambda n: n == "host",
                     "IsEmpty": lambda n: n == "", "Valid": lambda n: n in ("", "private", "host")},
    "CgroupSpec": {"IsContainer": _is_container, "Valid": lambda n: _is_container(n) or n == "",
                   "Container": _container_of},
    "Isolation": {"IsDefault": lambda n: n.lower() in ("default", ""), "IsHyperV": lambda n: n.lower() == "hyperv",
                  "IsProcess": lambda n: n.lower() == "process", "IsValid": lambda n: n.lower() in ("default", "")},
}


def _empty(value: Any) -> bool:
    """Go's ``omitempty``: false, 0, "", nil, and empty slices and maps."""
    return value is None or value is False or (not isinstance(value, bool) and value == 0) or value in ("", [], {})


def _value(kind: str, raw: Any) -> tuple[Any, Any]:
    """(what a template sees, what the CLI's JSON holds) of the JSON value ``raw`` of a field of ``kind``."""
    if kind in _MODES:
        text = "" if raw is None else str(raw)
        return _GoString(text, f"container.{kind}", _MODES[kind]), text
    if kind in _ZERO_JSON:
        value = _ZERO_JSON[kind] if raw is None else raw
        return value, value
    if kind == "[]":
        return (NIL_SLICE if raw is None else raw), raw
    if kind == "map":
        return GoMap(raw, nil=raw is None), raw
    if kind == "*":
        return (_NIL if raw is None else Pointer(raw)), raw
    if kind == "Console":
        value = [0, 0] if raw is None else raw
        return value, value
    if kind == "PortMap":
        return _port_map(raw), raw
    if kind.startswith("[]"):
        inner, pointers = kind[2:].lstrip("*"), kind.startswith("[]*")
        if not isinstance(raw, list):
            return NIL_SLICE, raw
        items = [_nested(inner, r) if isinstance(r, dict) else r for r in raw]
        return [Pointer(i) if pointers else i for i in items], raw
    if kind.startswith("*"):
        return (_NIL if raw is None else Pointer(_nested(kind[1:], raw))), raw
    nested = _nested(kind, raw if isinstance(raw, dict) else {})
    return nested, (raw if raw is not None else nested.marshal)


class _WithMethods(Struct):
    """A Go struct whose type has methods a template can call (``{{.HostConfig.RestartPolicy.IsNone}}``):
    looked up after its fields, never printed nor encoded as fields."""

    __slots__ = ("methods",)

    def __init__(self, base: Struct, methods: dict[str, Any]) -> None:
        super().__init__(base.type_name, base.fields, marshal=base.marshal, embedded=base.embedded,
                         printed=base.printed)
        self.methods = methods

    def field(self, name: str) -> Any:
        found = super().field(name)
        return self.methods[name] if found is MISSING and name in self.methods else found


def _restart_policy(policy: Struct) -> Struct:
    """``container.RestartPolicy`` with its methods (Docker 20.10's api/types/container)."""
    def name() -> str:
        return str(policy.fields.get("Name") or "")

    def is_same(other: Any) -> bool:
        target = other.target if isinstance(other, Pointer) else other
        if not isinstance(target, Struct):
            raise ValueError("runtime error: invalid memory address or nil pointer dereference")
        return bool(name() == str(target.field("Name") or "")
                    and policy.fields.get("MaximumRetryCount") == target.field("MaximumRetryCount"))

    return _WithMethods(policy, {
        "IsNone": lambda: name() in ("no", ""), "IsAlways": lambda: name() == "always",
        "IsOnFailure": lambda: name() == "on-failure", "IsUnlessStopped": lambda: name() == "unless-stopped",
        "IsSame": is_same,
    })


def _nested(kind: str, raw: Any) -> Any:
    if not isinstance(raw, dict):
        return raw
    type_name, fields = _NESTED[kind]
    out = _struct(type_name, fields, raw)
    if kind == "RestartPolicy":
        return _restart_policy(out)
    if kind in _STRINGERS:  # types with a String() method (on the pointer: fmt calls it in a slice too)
        out.printed = _STRINGERS[kind](out.fields)
    return out


_STRINGERS: dict[str, Any] = {
    "WeightDevice": lambda f: f"{f['Path']}:{f['Weight']}",
    "ThrottleDevice": lambda f: f"{f['Path']}:{f['Rate']}",
    "Ulimit": lambda f: f"{f['Name']}={f['Soft']}:{f['Hard']}",
}


def _struct(type_name: str, fields: tuple[Field, ...], raw: dict[str, Any], *,
            embedded: tuple[str, ...] = ()) -> Struct:
    """``raw`` (the daemon's JSON object) as the Go struct: every field (a missing one Go's zero value) and
    its JSON as the CLI's encoder writes it (field order, ``omitempty``); an embedded struct's fields are
    read from ``raw`` itself, as Go's JSON flattens them."""
    values: dict[str, Any] = {}
    marshal: dict[str, Any] = {}
    for go, json, kind, omitempty in fields:
        if go in embedded:
            inner = _struct(*_NESTED_EMBEDDED[kind], raw)
            values[go] = inner
            marshal.update(inner.marshal)
            continue
        value, encoded = _value(kind, raw.get(json))
        values[go] = value
        if not (omitempty and _empty(encoded)):
            marshal[json] = encoded if encoded is not None or kind not in _ZERO_JSON else _ZERO_JSON[kind]
    return Struct(type_name, values, marshal=marshal, embedded=embedded)


_NESTED_EMBEDDED: dict[str, tuple[str, tuple[Field, ...]]] = {
    "Resources": ("container.Resources", _RESOURCES),
    "Base": ("types.NetworkSettingsBase", _BASE),
    "Default": ("types.DefaultNetworkSettings", _DEFAULT),
}


def _port_map(ports: Any) -> Any:
    """nat.PortMap: ``map[80/tcp:[{0.0.0.0 8080}]]``, an unbound port a nil slice (``[]``)."""
    if ports is None:
        return NIL_MAP
    if not isinstance(ports, dict):
        return ports
    return {port: NIL_SLICE if binds is None else [_nested("PortBinding", b) for b in binds]
            for port, binds in ports.items()}


def host_config_struct(host: dict[str, Any]) -> Struct:
    """``container.HostConfig`` (``Resources`` embedded: ``.HostConfig.Memory`` reads through it)."""
    return _struct("container.HostConfig", _HOST_CONFIG, host, embedded=("Resources",))


def network_settings_struct(settings: dict[str, Any]) -> Struct:
    """``types.NetworkSettings``: the embedded base and default settings, ``Networks`` a map of pointers."""
    fields = _fields("NetworkSettingsBase:Base DefaultNetworkSettings:Default")
    out = _struct("types.NetworkSettings", fields, settings,
                  embedded=("NetworkSettingsBase", "DefaultNetworkSettings"))
    networks = settings.get("Networks")
    endpoints = GoMap({name: Pointer(_struct("network.EndpointSettings", _ENDPOINT, ep)) if isinstance(ep, dict)
                       else ep for name, ep in networks.items()} if isinstance(networks, dict) else None,
                      zero=_NIL, nil=not isinstance(networks, dict))
    out.fields["Networks"] = endpoints
    out.marshal["Networks"] = ({name: ep.target.marshal if isinstance(ep, Pointer) else ep
                               for name, ep in endpoints.items()} if isinstance(networks, dict) else networks)
    return out
