"""``container inspect``: Docker's JSON view of a container record, and ``ps``'s command column."""

from __future__ import annotations

# ps loads this module for list_command only: what inspect needs is imported in the functions using it
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from strata.container.records import Container

__all__ = ["host_config_doc", "inspect_by_name", "inspect_container", "list_command", "with_sizes"]


def list_command(c: Container) -> str:
    """The COMMAND Docker lists: path, then args with those containing spaces in single quotes."""
    args = [f"'{a}'" if " " in a else a for a in c.args]
    return " ".join([c.path, *args]) if args else c.path


def inspect_container(root: Path, c: Container) -> dict[str, Any]:
    from strata.container.logs import rfc3339nano
    from strata.container.monitor import log_path
    from strata.container.records import container_dir
    from strata.container.rootfs import Rootfs

    cdir = container_dir(root, c.id)
    rootfs = Rootfs(cdir, c.driver)
    if c.driver == "overlay":
        graph = {
            "Data": {
                "LowerDir": ":".join(str(p) for p in reversed(rootfs.lowers())),
                "MergedDir": str(rootfs.path),
                "UpperDir": str(rootfs.upper),
                "WorkDir": str(rootfs.work),
            },
            "Name": "overlay2",
        }
    else:
        graph = {"Data": {"Dir": str(rootfs.path)}, "Name": "vfs"}
    host_config = host_config_doc(c)
    mounts = [{k: v for k, v in p.items() if not k.startswith("_")} for p in c.mounts
              if p.get("_flag") != "--tmpfs"]  # --tmpfs shows in HostConfig.Tmpfs only, as Docker's
    return {
        "Id": c.id,
        "Created": rfc3339nano(c.created),
        "Path": c.path,
        "Args": list(c.args),
        "State": {
            "Status": c.state,
            "Running": c.state in ("running", "paused", "restarting"),
            "Paused": c.state == "paused",
            "Restarting": c.state == "restarting",
            "OOMKilled": False,
            "Dead": c.state == "dead",
            "Pid": c.pid,
            "ExitCode": c.exit_code,
            "Error": c.error,
            "StartedAt": rfc3339nano(c.started_at),
            "FinishedAt": rfc3339nano(c.finished_at),
            **({"Health": _health(c.health)} if c.health is not None else {}),
        },
        "Image": c.image_id,
        "ResolvConfPath": str(cdir / "resolv.conf"),
        "HostnamePath": str(cdir / "hostname"),
        "HostsPath": str(cdir / "hosts"),
        "LogPath": "" if (c.host_config.get("LogConfig") or {}).get("Type") == "none" else str(log_path(root, c.id)),
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay2" if c.driver == "overlay" else "vfs",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config,
        "GraphDriver": graph,
        "Mounts": mounts,
        "Config": c.config,
        "NetworkSettings": _network_settings(c),
    }


def with_sizes(doc: dict[str, Any], size_rw: int, size_root_fs: int) -> dict[str, Any]:
    """``inspect -s``: Docker's ``SizeRw`` (the container's own changes) and ``SizeRootFs`` (its whole
    filesystem: the image and the changes), placed after ``GraphDriver`` as Docker's JSON has them."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out[key] = value
        if key == "GraphDriver":
            out["SizeRw"], out["SizeRootFs"] = size_rw, size_root_fs
    return out


def _health(health: dict[str, Any]) -> dict[str, Any]:
    from strata.container.logs import rfc3339nano

    log = [{**r, "Start": rfc3339nano(r["Start"]), "End": rfc3339nano(r["End"])} for r in health.get("Log") or []]
    return {"Status": health.get("Status", ""), "FailingStreak": health.get("FailingStreak", 0), "Log": log}


def host_config_doc(c: Container) -> dict[str, Any]:
    """Docker's ``HostConfig`` with every field Docker 20.10 shows (the unsupported ones at their defaults)."""
    from strata.container.spec import MASKED_PATHS, READONLY_PATHS

    hc = c.host_config
    return {
        "Binds": hc.get("Binds"), "ContainerIDFile": hc.get("ContainerIDFile", ""), "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": hc.get("NetworkMode", "default"), "PortBindings": hc.get("PortBindings") or {},
        "RestartPolicy": hc.get("RestartPolicy") or {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": bool(hc.get("AutoRemove")),
        "VolumeDriver": "", "VolumesFrom": hc.get("VolumesFrom"), "CapAdd": None, "CapDrop": None, "CgroupnsMode": "host",
        "Dns": hc.get("Dns") or [], "DnsOptions": hc.get("DnsOptions") or [], "DnsSearch": hc.get("DnsSearch") or [],
        "ExtraHosts": hc.get("ExtraHosts"), "GroupAdd": None, "IpcMode": "private",
        "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
        "PublishAllPorts": bool(hc.get("PublishAllPorts")), "ReadonlyRootfs": bool(hc.get("ReadonlyRootfs")), "SecurityOpt": hc.get("SecurityOpt"),
        "UTSMode": "", "UsernsMode": hc.get("UsernsMode") or "", "ShmSize": 67108864, "Runtime": c.runtime, "ConsoleSize": [0, 0],
        "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
        "BlkioWeightDevice": [], "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
        "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
        "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0,
        "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False,
        "PidsLimit": None, "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0, "MaskedPaths": list(MASKED_PATHS), "ReadonlyPaths": list(READONLY_PATHS),
        **{k: hc[k] for k in ("Memory", "MemorySwap", "NanoCpus", "CpuShares", "CpusetCpus", "PidsLimit",
                              "Ulimits", "CapAdd", "CapDrop", "Privileged", "LogConfig", "GroupAdd", "IpcMode",
                              "PidMode", "UTSMode", "UsernsMode", "ShmSize", "Sysctls", "BlkioWeight", "Devices",
                              "OomKillDisable", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime",
                              "CpusetMems", "MemoryReservation", "KernelMemory", "OomScoreAdj", "MemorySwappiness",
                              "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                              "BlkioDeviceWriteIOps", "CgroupParent", "CgroupnsMode", "DeviceCgroupRules",
                              "DeviceRequests", "Isolation", "VolumeDriver", "Links")
           if k in hc},
        **({"Init": True} if hc.get("Init") else {}),
        **({"Mounts": hc["Mounts"]} if hc.get("Mounts") else {}),
        **({"Tmpfs": hc["Tmpfs"]} if hc.get("Tmpfs") else {}),
        **({"IDMappings": hc["IDMappings"]} if hc.get("IDMappings") else {}),  # Podman's, rootless only
    }


def _network_settings(c: Container) -> dict[str, Any]:
    """Docker's ``NetworkSettings``: the endpoints (addresses while running), the default bridge's
    address at the top level, the published ports while running."""
    from pathlib import Path

    from strata.container.network.ports import Mapping, settings_ports

    networks = {name: {k: v for k, v in ep.items() if not k.startswith("_")} for name, ep in c.networks.items()}
    if not c.started_at:  # Docker leaves an endpoint's NetworkID empty until the container's first start
        networks = {name: {**ep, "NetworkID": ""} if "NetworkID" in ep else ep for name, ep in networks.items()}
    main = networks.get("bridge") or {}
    main_live = any(ep.get("IPAddress") for ep in networks.values())
    running = c.running and bool(c.netns)
    ports = settings_ports(dict(c.config.get("ExposedPorts") or {}),
                           [Mapping.from_json(p) for p in c.ports]) if c.running and main_live else {}
    sandbox = Path(c.netns).name if c.netns else ""
    return {
        "Bridge": "", "SandboxID": sandbox, "HairpinMode": False, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": ports, "SandboxKey": c.netns if running else "",
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": main.get("EndpointID") or "", "Gateway": main.get("Gateway") or "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": main.get("IPAddress") or "",
        "IPPrefixLen": main.get("IPPrefixLen") or 0, "IPv6Gateway": "", "MacAddress": main.get("MacAddress") or "",
        "Networks": networks,
    }


def inspect_by_name(root: Path, name: str) -> dict[str, Any]:
    """The inspect document of the container ``name`` (name, ID or ID prefix); ContainerNotFound if none."""
    from strata.container.lifecycle import reconcile
    from strata.container.records import ContainerStore

    with ContainerStore(root) as store:
        return inspect_container(root, reconcile(store, store.get(name)))
