"""netavark, driven through its JSON interface: ``setup``/``teardown`` of a container's namespace.

netavark makes the bridge, the veth pair, the addresses and routes, NAT and the port forwards
(iptables, with ``route_localnet`` for 127.0.0.1), and starts aardvark-dns for networks with name
resolution. strata allocates the addresses (netavark's static IPs) and the ports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strata.container.network.networks import Network
from strata.container.network.ports import Mapping
from strata.errors import StrataError

__all__ = ["Endpoint", "collect", "netavark_options", "setup", "start", "teardown"]

_TOOLS_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_CANDIDATES = ("/usr/libexec/podman/{}", "/usr/lib/podman/{}", "/usr/local/libexec/podman/{}")


def _binary(name: str) -> str:
    for pattern in _CANDIDATES:
        path = pattern.format(name)
        if os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found is None:
        raise StrataError(f"{name} is not installed: strata's networking needs netavark (Debian: apt-get install "
                          "netavark aardvark-dns)")
    return found


Endpoint = dict[str, Any]  # interface, ip, mac, aliases


def _name(net: Network) -> str:
    """The name netavark knows the network by: unique on the host, since netavark names its iptables
    chains after it (every store has a ``bridge``) and aardvark-dns's config file too."""
    return f"strata-{net.short_id}"


def _network_doc(net: Network) -> dict[str, Any]:
    options = {"metric": "0"}  # Docker's default route has no metric (netavark's default is 100)
    mtu = net.options.get("com.docker.network.driver.mtu") or net.options.get("mtu")
    if mtu:
        options["mtu"] = mtu
    subnets = [{"subnet": net.subnet, "gateway": net.gateway}]
    if net.ipv6 and net.subnet6:
        subnets.append({"subnet": net.subnet6, "gateway": net.gateway6})
    return {
        "name": _name(net), "id": net.id, "driver": "bridge", "network_interface": net.interface,
        "subnets": subnets, "ipv6_enabled": net.ipv6 and bool(net.subnet6),
        "internal": net.internal, "dns_enabled": net.dns, "options": options,
        "ipam_options": {"driver": "host-local"},
    }


def netavark_options(cid: str, name: str, nets: list[tuple[Network, Endpoint]], ports: list[Mapping],
                     dns_servers: list[str]) -> dict[str, Any]:
    """netavark's NetworkOptions for the container on ``nets`` (each with its endpoint)."""
    return {
        "container_id": cid,
        "container_name": name,
        "networks": {
            _name(net): {"interface_name": ep["interface"], "static_ips": [ep["ip"], *([ep["ip6"]] if ep.get("ip6") else [])], "static_mac": ep["mac"],
                       "aliases": list(ep.get("aliases") or []) or None}
            for net, ep in nets
        },
        "network_info": {_name(net): _network_doc(net) for net, _ in nets},
        "port_mappings": [
            {"host_ip": m.host_ip, "container_port": m.container_port, "host_port": m.host_port, "range": 1,
             "protocol": m.protocol}
            for m in ports
        ] or None,
        "dns_servers": dns_servers or None,
    }


def start(verb: str, config_dir: Path, netns: Path, options: dict[str, Any],
          host: Path | None = None) -> subprocess.Popen[bytes]:
    """Start netavark ``verb`` (``collect`` waits for it); ``host``: the network namespace it runs in (a
    rootless store's), where its bridges and rules go, instead of this process's."""
    argv = [_binary("netavark"), "--config", str(config_dir), "--aardvark-binary", _binary("aardvark-dns"),
            verb, str(netns)]
    if host is not None:
        argv = ["nsenter", f"--net={host}", "--", *argv]
    config_dir.mkdir(parents=True, exist_ok=True)
    r, w = os.pipe()
    try:
        os.write(w, json.dumps(options).encode())  # a few KiB: fits the pipe
    finally:
        os.close(w)
    try:
        env = {**os.environ, "PATH": _TOOLS_PATH}  # iptables is looked up in PATH for every rule
        return subprocess.Popen(argv, stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    finally:
        os.close(r)


def collect(proc: subprocess.Popen[bytes], verb: str) -> str:
    """Wait for a started netavark; its output, or its error as a StrataError."""
    with proc:
        out, err = proc.communicate()
    if proc.returncode != 0:
        raise StrataError(f"netavark {verb}: {_error_text(out, err)}")
    return out.decode(errors="replace")


def _run(verb: str, config_dir: Path, netns: Path, options: dict[str, Any],
         during: Callable[[], None] | None = None, host: Path | None = None) -> str:
    """netavark ``verb``; ``during`` runs meanwhile (netavark spends its time waiting on the kernel
    and iptables)."""
    proc = start(verb, config_dir, netns, options, host)
    try:
        if during is not None:
            during()
    finally:
        out = collect(proc, verb)
    return out


def _error_text(stdout: bytes, stderr: bytes) -> str:
    for text in (stdout, stderr):
        try:
            doc = json.loads(text)
            if isinstance(doc, dict) and doc.get("error"):
                return str(doc["error"])
        except ValueError:
            continue
    return (stderr or stdout).decode(errors="replace").strip()


def setup(config_dir: Path, netns: Path, options: dict[str, Any], host: Path | None = None) -> dict[str, Any]:
    """Set the namespace up; netavark's status block per network name."""
    out = _run("setup", config_dir, netns, options, host=host)
    try:
        status = json.loads(out)
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def teardown(config_dir: Path, netns: Path, options: dict[str, Any],
             during: Callable[[], None] | None = None, host: Path | None = None) -> None:
    _run("teardown", config_dir, netns, options, during, host)
