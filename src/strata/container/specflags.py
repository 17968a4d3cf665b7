"""The ``run``/``create`` flags Docker 20.10 has for cgroups, devices and drivers, as its CLI parses them
and its daemon (cgroupfs driver, overlay2 over a non-xfs filesystem, no GPU driver) takes them:
``--cgroup-parent``, ``--cgroupns``, ``--device-cgroup-rule``, ``--gpus``, ``--isolation``,
``--storage-opt``, ``--volume-driver``; their HostConfig fields and their part of the OCI spec."""

from __future__ import annotations

import re

from strata.errors import NotFound, StrataError

TYPE_CHECKING = False  # not typing's: a build step's container loads no typing
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "apply_spec_flags",
    "check_addresses",
    "check_device_requests",
    "check_volume_driver",
    "endpoint_addresses",
    "parse_device_cgroup_rule",
    "parse_gpus",
    "spec_flags_host_config",
]

_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
_GPU_KEYS = ("driver", "count", "device", "capabilities", "options")


def parse_device_cgroup_rule(text: str) -> str:
    """Docker's ValidateDeviceCgroupRule: ``TYPE MAJOR:MINOR ACCESS`` (type a|c|b, ``*`` for any number)."""
    if not _RULE.match(text):
        raise ValueError(f"invalid device cgroup format '{text}'")
    return text


def _gpu_count(text: str) -> int:
    """Docker 20.10's parseCount: ``all`` or Go's ``strconv.Atoi`` (its error wrapped)."""
    if text == "all":
        return -1
    if re.fullmatch(r"[+-]?[0-9]+", text):
        value = int(text)
        if -(2 ** 63) <= value < 2 ** 63:
            return value
        why = "value out of range"
    else:
        why = "invalid syntax"
    raise ValueError(f'count must be an integer: strconv.Atoi: parsing "{text}": {why}')


def _csv_fields(text: str) -> list[str]:
    import csv

    try:
        return next(csv.reader([text]), [])
    except csv.Error as e:  # Go's encoding/csv words differ; a bare quote is the usual cause
        raise ValueError(str(e)) from None


def parse_gpus(text: str) -> dict[str, Any]:
    """Docker's GpuOpts.Set: ``all``, a count, or ``key=value`` fields (driver, count, device,
    capabilities, options) as one ``DeviceRequest``."""
    req: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": None, "Capabilities": None, "Options": None}
    seen: set[str] = set()
    for field in _csv_fields(text):
        key, eq, value = field.partition("=")
        if key in seen:
            raise ValueError(f"gpu request key '{key}' can be specified only once")
        seen.add(key)
        if not eq:
            seen.add("count")
            req["Count"] = _gpu_count(key)
        elif key not in _GPU_KEYS:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
        elif key == "driver":
            req["Driver"] = value
        elif key == "count":
            req["Count"] = _gpu_count(value)
        elif key == "device":
            req["DeviceIDs"] = value.split(",")
        elif key == "capabilities":
            req["Capabilities"] = [[*value.split(","), "gpu"]]
        else:
            req["Options"] = dict(kv.partition("=")[::2] for kv in _csv_fields(value))
    if "count" not in seen and req["DeviceIDs"] is None:
        req["Count"] = 1
    req["Options"] = req["Options"] or {}
    req["Capabilities"] = req["Capabilities"] or [["gpu"]]
    return req


def _storage_opts(items: list[str]) -> dict[str, str]:
    """``--storage-opt key=value``: the CLI's format check, then overlay2's on a filesystem without
    project quotas (``size`` needs xfs with ``pquota``; any other key is unknown)."""
    opts: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise StrataError("invalid storage option", exit_code=125)
        opts[key] = value
    if not opts:
        return opts
    if any(key.lower() == "size" for key in opts):
        raise StrataError("--storage-opt is supported only for overlay over xfs with 'pquota' mount option")
    raise StrataError(f"Unknown option {next(iter(opts))}")


def spec_flags_host_config(*, cgroup_parent: str, cgroupns: str, device_cgroup_rules: list[str],
                           gpus: list[dict[str, Any]], isolation: str, storage_opt: list[str],
                           volume_driver: str) -> dict[str, Any]:
    """The HostConfig fields of these flags, checked as Docker's CLI (exit 125) and daemon (exit 1) do."""
    if cgroupns not in ("", "host", "private"):
        raise StrataError("--cgroupns: invalid CGROUP mode", exit_code=125)
    _storage_opts(storage_opt)
    if isolation and isolation.lower() != "default":
        raise StrataError(f"Invalid isolation: \"{isolation}\" - linux only supports 'default'")
    hc: dict[str, Any] = {"CgroupnsMode": cgroupns or "host"}  # cgroup v1: the daemon's default is host
    for key, value in (("CgroupParent", cgroup_parent), ("Isolation", isolation), ("VolumeDriver", volume_driver)):
        if value:
            hc[key] = value
    if device_cgroup_rules:
        hc["DeviceCgroupRules"] = list(device_cgroup_rules)
    if gpus:
        hc["DeviceRequests"] = list(gpus)
    return hc


def check_volume_driver(driver: str, named: bool) -> None:
    """A volume made for the container through ``--volume-driver``: only ``local`` exists here (the
    daemon's plugin lookup fails NotFound)."""
    if named and driver and driver != "local":
        raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')


def check_device_requests(hc: dict[str, Any]) -> None:
    """At start, as the daemon's createSpec: no device driver here can serve a ``--gpus`` request."""
    for req in hc.get("DeviceRequests") or []:
        caps = "[" + " ".join("[" + " ".join(group) + "]" for group in req.get("Capabilities") or []) + "]"
        raise StrataError(f'could not select device driver "{req.get("Driver", "")}" with capabilities: {caps}')


def _rule(text: str) -> dict[str, Any]:
    m = _RULE.match(text)
    if m is None:  # checked at create
        raise StrataError(f"invalid device cgroup rule format: '{text}'")
    kind, major, minor, access = m.groups()
    rule: dict[str, Any] = {"allow": True, "type": kind}
    if major != "*":
        rule["major"] = int(major)
    if minor != "*":
        rule["minor"] = int(minor)
    rule["access"] = access
    return rule


def endpoint_addresses(mode: str, ip6: str, link_local: list[str]) -> dict[str, Any]:
    """``--ip6``/``--link-local-ip`` as the endpoint's ``IPAMConfig`` fields, the daemon's create-time check
    (an IPv6 address); Docker's CLI files them under ``default`` for the default network: never used."""
    if mode == "default" or not (ip6 or link_local):
        return {}
    if ip6:
        import ipaddress

        try:
            if ipaddress.ip_address(ip6).version != 6:
                raise ValueError(ip6)
        except ValueError:
            raise StrataError(f"invalid IPv6 address: {ip6}") from None
    return {**({"IPv6Address": ip6} if ip6 else {}), **({"LinkLocalIPs": list(link_local)} if link_local else {})}


def check_addresses(networks: dict[str, Any]) -> None:
    """At start, as the daemon connects each endpoint: a static IPv6 address needs a user-defined network
    (whose IPv6 subnet the network code checks as it allocates); link-local addresses must be link-local."""
    import ipaddress

    for name, ep in networks.items():
        ipam = (ep or {}).get("IPAMConfig") or {}
        if ipam.get("IPv6Address") and name in ("bridge", "host", "none"):
            raise StrataError("user specified IP address is supported on user defined networks only")
        addresses = list(ipam.get("LinkLocalIPs") or [])
        for text in addresses:
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                raise StrataError(f"Invalid link-local IP address: [{' '.join(addresses)}]") from None
            if not addr.is_link_local:
                raise StrataError(f"invalid link local IP address: {text}")


def apply_spec_flags(spec: dict[str, Any], hc: dict[str, Any], cid: str, networks: dict[str, Any] | None = None) -> None:
    """``--cgroup-parent``, ``--cgroupns private`` and ``--device-cgroup-rule`` in the OCI spec (after the
    cgroup path and the devices of ``--device``/``--privileged`` are in); ``--gpus``, ``--ip6`` and
    ``--link-local-ip`` refused as the daemon does at start."""
    check_device_requests(hc)
    check_addresses(networks or {})
    linux = spec["linux"]  # (the cgroup path of a --cgroup-parent: container.isolation.cgroup_path)
    if hc.get("CgroupnsMode") == "private":
        namespaces = linux.setdefault("namespaces", [])
        if not any(ns.get("type") == "cgroup" for ns in namespaces):
            namespaces.append({"type": "cgroup"})
    for text in hc.get("DeviceCgroupRules") or []:
        linux.setdefault("resources", {}).setdefault("devices", []).append(_rule(text))
