"""Docker's typed inspect documents for templates: what ``{{.State}}``, ``{{.Mounts}}``,
``{{.Config.Healthcheck}}`` or ``{{.Metadata.LastTagTime}}`` print, as Go's fmt ``%v`` of the structs
of Docker 20.10's ``api/types`` (their field order, nil pointers, ``time.Time``, ``time.Duration``).
The JSON of every value stays the daemon's JSON (a struct's ``marshal``)."""

from __future__ import annotations

import re
from typing import Any

from strata.cli.inspectstructs import host_config_struct, network_settings_struct
from strata.gotemplate import NIL_MAP, NIL_SLICE, Pointer, Struct
from strata.gotemplate.gojson import OmitEmpty
from strata.gotemplate.values import GoMap, Nil, Printed

__all__ = ["container_typed", "document_struct", "go_duration", "go_time_string", "image_typed", "network_typed", "volume_typed"]

_NIL = Nil("<nil>")

_STATE = ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode", "Error",
          "StartedAt", "FinishedAt", "Health")
_MOUNT = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")
_HEALTHCHECK = ("Test", "Interval", "Timeout", "StartPeriod", "Retries")
_ZERO: dict[str, Any] = {"Running": False, "Paused": False, "Restarting": False, "OOMKilled": False, "Dead": False,
                         "Pid": 0, "ExitCode": 0, "RW": False, "Retries": 0, "Test": NIL_SLICE}


def _struct(type_name: str, names: tuple[str, ...], raw: dict[str, Any], **typed: Any) -> Struct:
    """``raw`` (a JSON object) as the Go struct ``type_name`` with fields ``names``: a field its JSON
    left out is Go's zero value; ``typed`` overrides fields."""
    fields = {n: typed[n] if n in typed else raw.get(n, _ZERO.get(n, "")) for n in names}
    return Struct(type_name, fields, marshal=raw)


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1.5µs``, ``30s``, ``1h0m0s``."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 1_000_000_000:
        prec, unit = (3, "µs") if u < 1_000_000 else (6, "ms")
        return f"{sign}{u // 10**prec}{_fraction(u % 10**prec, prec)}{unit}"
    secs = u // 1_000_000_000
    text = f"{secs % 60}{_fraction(u % 1_000_000_000, 9)}s"
    if secs >= 60:
        text = f"{secs // 60 % 60}m{text}"
        if secs >= 3600:
            text = f"{secs // 3600}h{text}"
    return sign + text


def _fraction(digits: int, prec: int) -> str:
    text = f"{digits:0{prec}d}".rstrip("0")
    return "." + text if text else ""


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def go_time_string(text: str) -> str:
    """Go's ``time.Time.String()`` of an RFC 3339 time as the CLI decodes it: ``2026-12-01
    03:19:02.123456789 +0000 UTC`` (fraction without trailing zeros; an offset with no zone name
    printed twice, ``+0100 +0100``); ``text`` itself when it is no such time."""
    m = _RFC3339.match(text)
    if m is None:
        return text
    day, clock, frac, zone = m.groups()
    frac = (frac or "").rstrip("0")
    if zone in ("Z", "+00:00"):
        zone_text = "+0000 UTC"
    else:
        offset = zone.replace(":", "")
        zone_text = f"{offset} {offset}"
    return f"{day} {clock}{'.' + frac if frac else ''} {zone_text}"


def _time(value: Any) -> Any:
    return Printed(go_time_string(value), value) if isinstance(value, str) else value


def _duration(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return Printed(go_duration(value), value)
    return Printed("0s", 0) if value is None else value


def container_typed(doc: dict[str, Any]) -> dict[str, Any]:
    """A container's inspect document with Docker's ContainerJSON structs where templates see them."""
    out = dict(doc)
    state = doc.get("State")
    if isinstance(state, dict):
        health = state.get("Health")
        health_value = Pointer(_health(health)) if isinstance(health, dict) else _NIL
        out["State"] = _struct("types.ContainerState", _STATE, state, Health=health_value)
    host = doc.get("HostConfig")
    if isinstance(host, dict):
        out["HostConfig"] = host_config_struct(host)
    mounts = doc.get("Mounts")
    if isinstance(mounts, list):
        out["Mounts"] = [_struct("types.MountPoint", _MOUNT, m) if isinstance(m, dict) else m for m in mounts]
    settings = doc.get("NetworkSettings")
    if isinstance(settings, dict):
        out["NetworkSettings"] = network_settings_struct(settings)
    for key in ("Config", "GraphDriver"):
        if isinstance(doc.get(key), dict):
            out[key] = _common(key, doc[key])
    return out


def _health(health: dict[str, Any]) -> Struct:
    """types.Health: ``Log`` a slice of pointers to HealthcheckResult (their times Go's ``time.Time``)."""
    log = health.get("Log")
    results = NIL_SLICE if log is None else [
        Pointer(_struct("types.HealthcheckResult", ("Start", "End", "ExitCode", "Output"), r,
                        Start=_time(r.get("Start")), End=_time(r.get("End"))))
        if isinstance(r, dict) else r for r in log]
    return _struct("types.Health", ("Status", "FailingStreak", "Log"), health, Log=results)


def _common(key: str, value: dict[str, Any]) -> Any:
    """``Config`` (container.Config; its Healthcheck a struct of durations) and ``GraphDriver``
    (``{map[…] overlay2}``)."""
    if key == "GraphDriver":
        data = value.get("Data")
        return _struct("types.GraphDriverData", ("Data", "Name"), value, Data=NIL_MAP if data is None else data)
    typed: dict[str, Any] = {}
    check = value.get("Healthcheck")
    if isinstance(check, dict):
        durations = {n: _duration(check.get(n)) for n in ("Interval", "Timeout", "StartPeriod")}
        typed["Healthcheck"] = _struct("container.HealthConfig", _HEALTHCHECK, check, **durations)
    else:
        typed["Healthcheck"] = _NIL if check is None else check
    for name in ("ExposedPorts", "Volumes"):  # map[…]struct{}: ``map[80/tcp:{}]``
        keys = value.get(name)
        typed[name] = {k: _EMPTY for k in keys} if isinstance(keys, dict) else _map(keys)
    for name in ("Env", "Cmd", "Entrypoint", "OnBuild", "Shell"):
        typed[name] = NIL_SLICE if value.get(name) is None else value[name]
    typed["Labels"] = _map(value.get("Labels"))
    typed["StopTimeout"] = _NIL if value.get("StopTimeout") is None else value["StopTimeout"]
    return _struct("container.Config", _CONFIG, value, **typed)


_EMPTY = Struct("struct {}", {}, marshal={})
_CONFIG = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
           "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
           "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell")
for _name in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce", "ArgsEscaped",
              "NetworkDisabled"):
    _ZERO[_name] = False


def image_typed(doc: dict[str, Any]) -> dict[str, Any]:
    """An image's inspect document as types.ImageInspect: ``Metadata`` a struct of a ``time.Time``."""
    out = dict(doc)
    meta = doc.get("Metadata")
    if isinstance(meta, dict) and "LastTagTime" in meta:
        out["Metadata"] = _struct("types.ImageMetadata", ("LastTagTime",), meta,
                                  LastTagTime=_time(meta["LastTagTime"]))
    for key in ("Config", "ContainerConfig", "GraphDriver"):
        if isinstance(doc.get(key), dict):
            out[key] = _common("Config" if key != "GraphDriver" else key, doc[key])
    rootfs = doc.get("RootFS")
    if isinstance(rootfs, dict):
        out["RootFS"] = _struct("types.RootFS", ("Type", "Layers", "BaseLayer"), rootfs,
                                Layers=NIL_SLICE if rootfs.get("Layers") is None else rootfs["Layers"])
    return out if not isinstance(doc, OmitEmpty) else OmitEmpty(out, doc.omitted)


def network_typed(doc: dict[str, Any]) -> dict[str, Any]:
    """A network's inspect document as types.NetworkResource: ``Created`` a ``time.Time``, ``IPAM``
    and the ``Containers`` endpoints structs (``{default map[] [{172.19.0.0/16  172.19.0.1 map[]}]}``)."""
    out = {**doc, "Created": _time(doc["Created"])} if "Created" in doc else dict(doc)
    ipam = doc.get("IPAM")
    if isinstance(ipam, dict):
        configs = ipam.get("Config")
        out["IPAM"] = _struct("network.IPAM", ("Driver", "Options", "Config"), ipam,
                              Options=_map(ipam.get("Options")),
                              Config=NIL_SLICE if configs is None else [_ipam_config(c) for c in configs])
    if isinstance(doc.get("ConfigFrom"), dict):  # network.ConfigReference: {name}
        out["ConfigFrom"] = _struct("network.ConfigReference", ("Network",), doc["ConfigFrom"])
    members = doc.get("Containers")
    if isinstance(members, dict):
        out["Containers"] = {k: _struct("types.EndpointResource", _ENDPOINT, v) if isinstance(v, dict) else v
                             for k, v in members.items()}
    return out


_ENDPOINT = ("Name", "EndpointID", "MacAddress", "IPv4Address", "IPv6Address")


def _map(value: Any) -> Any:
    """A ``map[string]string`` (labels, options): Go's typed map, a missing key ``<no value>``."""
    return GoMap(value, nil=value is None) if value is None or isinstance(value, dict) else value


def _ipam_config(raw: Any) -> Any:
    if not isinstance(raw, dict):
        return raw
    fields = {"Subnet": raw.get("Subnet", ""), "IPRange": raw.get("IPRange", ""), "Gateway": raw.get("Gateway", ""),
              "AuxAddress": _map(raw.get("AuxiliaryAddresses"))}
    return Struct("network.IPAMConfig", fields, marshal=raw)


def volume_typed(doc: dict[str, Any]) -> Any:
    """A volume's inspect document as types.Volume: nil maps ``map[]``, no usage data a nil pointer."""
    extra: dict[str, Any] = {k: v for k, v in (("Status", NIL_MAP), ("UsageData", _NIL)) if k not in doc}
    fields: dict[str, Any] = {**doc, **extra}
    fields.update({k: _map(doc[k]) for k in ("Labels", "Options") if k in doc})
    return OmitEmpty(fields, frozenset(extra))


_CONTAINER_BASE = ("Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath", "HostsPath",
                   "LogPath", "Node", "Name", "RestartCount", "Driver", "Platform", "MountLabel", "ProcessLabel",
                   "AppArmorProfile", "ExecIDs", "HostConfig", "GraphDriver", "SizeRw", "SizeRootFs")
_POINTERS = frozenset({"State", "HostConfig", "Config", "ContainerConfig", "NetworkSettings"})
_IMAGE = ("Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container", "ContainerConfig",
          "DockerVersion", "Author", "Config", "Architecture", "Variant", "Os", "OsVersion", "Size", "VirtualSize",
          "GraphDriver", "RootFS", "Metadata")
_NETWORK = ("Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal", "Attachable", "Ingress",
            "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels", "Peers", "Services")
_VOLUME = ("CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope", "Status", "UsageData")


def document_struct(doc: Any) -> Any:
    """The whole typed document as the Go struct ``{{.}}`` prints (``types.ContainerJSON`` with its embedded
    ``*ContainerJSONBase``, ``types.ImageInspect``, ``types.NetworkResource``, ``volume.Volume``); its JSON
    is ``doc``'s. ``doc`` itself when it is none of them."""
    if not isinstance(doc, dict):
        return doc
    if "GraphDriver" in doc and "State" in doc and "HostConfig" in doc:
        base = Struct("types.ContainerJSONBase", {_go(n): _field(doc, n) for n in _CONTAINER_BASE})
        top = {"ContainerJSONBase": Pointer(base), "Mounts": _field(doc, "Mounts"),
               "Config": _field(doc, "Config"), "NetworkSettings": _field(doc, "NetworkSettings")}
        return Struct("types.ContainerJSON", top, marshal=doc, embedded=("ContainerJSONBase",))
    for names, type_name, kind in ((_IMAGE, "types.ImageInspect", ("RootFS", "Architecture")),
                                   (_NETWORK, "types.NetworkResource", ("IPAM", "Created")),
                                   (_VOLUME, "volume.Volume", ("Mountpoint", "Scope"))):
        if all(k in doc for k in kind):
            fields = {_go(n): _field(doc, n) for n in names}
            return Struct(type_name, fields, marshal=doc)
    return doc


def _go(name: str) -> str:
    """The Go field's name of a JSON name (``ID`` with the tag ``json:"Id"``: ``{{.ID}}`` reads the struct,
    ``{{.Id}}`` only the raw JSON)."""
    return "ID" if name == "Id" else name


def _field(doc: dict[str, Any], name: str) -> Any:
    """A top-level field as its struct holds it: a pointer to a struct, Go's zero value when absent."""
    value = doc.get(name, _TOP_ZERO.get(name, ""))
    if value is None and name in ("Args", "ExecIDs", "Mounts", "RepoTags", "RepoDigests", "Peers"):
        return NIL_SLICE
    if name in _POINTERS:
        return _NIL if value is None else Pointer(value)
    if name == "ConfigFrom" and isinstance(value, dict):
        return Struct("network.ConfigReference", {"Network": value.get("Network", "")}, marshal=value)
    return value


_TOP_ZERO: dict[str, Any] = {"Mounts": NIL_SLICE, "Node": _NIL, "SizeRw": _NIL, "SizeRootFs": _NIL, "Peers": NIL_SLICE, "Services": NIL_MAP, "Size": 0, "VirtualSize": 0, "Status": NIL_MAP,
                             "UsageData": _NIL, "Containers": NIL_MAP, "Options": NIL_MAP, "Labels": NIL_MAP}
