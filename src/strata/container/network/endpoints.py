"""A container on its networks: addresses and ports allocated under the networks' lock, a namespace
file under ``<root>/netns/``, netavark ``setup`` before the container starts and ``teardown`` when it
ends (or when the next strata command finds its monitor dead), ``/etc/hosts`` and ``resolv.conf``.

The container record holds what is set up (``networks`` endpoints with addresses, ``ports``,
``netns``): an address or port is in use exactly while some record holds it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from contextlib import ExitStack
from pathlib import Path

from strata.atomicfile import write_bytes_atomic
from strata.container.network.files import host_resolv, hosts_file, resolv_conf
from strata.container.records import Container, ContainerStore, container_dir, pid_alive, process_start
from strata.errors import Conflict, ContainerNotFound, StrataError
from strata.rootless import is_rootless

# ``--network none`` and ``host`` (a build step's) need none of the network store, netavark, the
# address and port allocation or namespaces: those are loaded by the functions that use them, and the
# predefined networks' IDs are read without the network store (``_predefined_id``).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from strata.container.network import netavark
    from strata.container.network.networks import Network, NetworkStore
    from strata.container.network.ports import Mapping

__all__ = [
    "EndpointRequest",
    "Pending",
    "add_link_local",
    "bridged",
    "check_conflicts",
    "check_endpoint",
    "endpoint_settings",
    "forget",
    "netavark_endpoint",
    "netavark_options_of",
    "plan_networks",
    "release_if_orphaned",
    "setup_network",
    "teardown_network",
]

_RUNTIME_KEYS = ("EndpointID", "Gateway", "IPAddress", "MacAddress", "IPv6Gateway", "GlobalIPv6Address")


def endpoint_settings(net: Network, ip: str = "", aliases: list[str] | None = None,
                      extra: EndpointRequest | None = None) -> dict[str, Any]:
    """Docker's EndpointSettings of a container on ``net`` before it runs (``extra``: what ``network
    connect`` asks for: its IPAMConfig and DriverOpts are always objects, as Docker's CLI sends them)."""
    ipam: dict[str, Any] | None = {"IPv4Address": ip} if ip else None
    opts: dict[str, str] | None = None
    links: list[str] | None = None
    if extra is not None:
        ipam = {**({"IPv4Address": ip} if ip else {}), **({"IPv6Address": extra.ip6} if extra.ip6 else {}),
                **({"LinkLocalIPs": list(extra.link_local)} if extra.link_local else {})}
        ipam = ipam if (ipam or extra.from_connect) else None
        opts = dict(extra.driver_opts) if (extra.driver_opts or extra.from_connect) else None
        links = list(extra.links) or None
    return _settings(net.id, ipam, links, aliases or None, opts)


def _settings(net_id: str, ipam: dict[str, Any] | None, links: list[str] | None, aliases: list[str] | None,
              opts: dict[str, str] | None) -> dict[str, Any]:
    return {
        "IPAMConfig": ipam, "Links": links, "Aliases": aliases,
        "NetworkID": net_id, "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": opts,
    }


# container.network.networks.Network's fields (tests/test_coldstep.py checks they stay the same): a file
# with others is not a network the store loads
NETWORK_FIELDS = frozenset({
    "name", "id", "driver", "created", "subnet", "gateway", "interface", "internal", "dns", "show_gateway",
    "options", "labels", "user_subnet", "ip_range", "aux", "ipv6", "subnet6", "gateway6", "show_gateway6",
    "ip_range6", "aux6", "attachable", "config_only", "config_from", "ipam_driver", "ipam_options",
})
_NETWORK_REQUIRED = ("name", "id", "driver", "created")


def _predefined_id(root: Path, name: str) -> str | None:
    """The ID of the predefined network ``name`` (host, none) as ``NetworkStore(root).get(name)`` finds
    it, read from the network files alone; None when the store has to be asked (a predefined network
    missing: the store makes them, or a file it would not load as these are read)."""
    try:
        entries = os.scandir(os.path.join(root, "networks"))
    except OSError:
        return None
    names: set[str] = set()
    found: list[str] = []
    with entries:
        for entry in entries:
            if not entry.name.endswith(".json"):
                continue
            try:
                with open(entry.path, "rb") as f:
                    doc = json.loads(f.read())
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict) or not doc.keys() <= NETWORK_FIELDS or any(k not in doc for k in _NETWORK_REQUIRED):
                return None
            names.add(str(doc["name"]))
            if name in (doc["name"], doc["id"]):
                if doc.get("config_only"):
                    return None
                found.append(str(doc["id"]))
    if not {"bridge", "host", "none"} <= names or len(found) != 1:
        return None
    return found[0]


class EndpointRequest:
    """An endpoint's settings beyond its IPv4 address and aliases (``--ip6``, ``--link-local-ip``,
    ``--link``, ``--driver-opt``)."""

    __slots__ = ("driver_opts", "from_connect", "ip6", "link_local", "links")

    def __init__(self, ip6: str = "", link_local: list[str] | None = None, links: list[str] | None = None,
                 driver_opts: dict[str, str] | None = None, from_connect: bool = False) -> None:
        self.ip6, self.from_connect = ip6, from_connect
        self.link_local = [] if link_local is None else link_local
        self.links = [] if links is None else links
        self.driver_opts = {} if driver_opts is None else driver_opts

    def __repr__(self) -> str:
        return (f"EndpointRequest(ip6={self.ip6!r}, link_local={self.link_local!r}, links={self.links!r}, "
                f"driver_opts={self.driver_opts!r}, from_connect={self.from_connect!r})")

    def __eq__(self, other: object) -> bool:
        if type(other) is not EndpointRequest:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it was


def check_endpoint(net: Network, ip: str, extra: EndpointRequest | None, exit_code: int = 1) -> None:
    """The daemon's checks of user-given addresses on ``net`` (IPv4, IPv6, link-local), its words."""
    from strata.container.network.networks import PREDEFINED

    ip6 = extra.ip6 if extra else ""
    if (ip or ip6) and net.name in PREDEFINED:
        raise StrataError("user specified IP address is supported on user defined networks only",
                          exit_code=exit_code)
    if (ip and not net.user_subnet) or (ip6 and not net.subnet6):
        raise StrataError("user specified IP address is supported only when connecting to networks with user "
                          "configured subnets", exit_code=exit_code)
    for addr, subnet, family in ((ip, net.subnet, 4), (ip6, net.subnet6, 6)):
        if not addr:
            continue
        try:
            parsed = ipaddress.ip_address(addr)
        except ValueError:
            parsed = None
        if parsed is None or parsed.version != family:
            raise StrataError(f"Invalid IPv6 address: {addr})" if family == 6 else f"invalid IPv4 address: {addr}",
                              exit_code=exit_code)
        if parsed not in ipaddress.ip_network(subnet):
            raise StrataError(f"Invalid address {addr}: It does not belong to any of this network's subnets",
                              exit_code=exit_code)
    _check_link_local(extra.link_local if extra else [], exit_code)


def _check_link_local(addrs: list[str], exit_code: int) -> None:
    for addr in addrs:
        try:
            parsed = ipaddress.ip_address(addr)
        except ValueError:
            raise StrataError(f"Invalid link-local IP address: [{' '.join(addrs)}]", exit_code=exit_code) from None
        if not parsed.is_link_local:
            raise StrataError(f"invalid link local IP address: {addr}", exit_code=exit_code)


def check_conflicts(mode: str, hostname: bool, host_config: dict[str, Any], mac: str) -> None:
    """Docker's "conflicting options" for ``--network container:X`` and ``host``."""
    def conflict(what: str) -> StrataError:
        return StrataError(f"conflicting options: {what}", exit_code=125)

    if mode.startswith("container:"):
        if hostname:
            raise conflict("hostname and the network mode")
        if host_config.get("Dns") or host_config.get("DnsSearch") or host_config.get("DnsOptions"):
            raise conflict("dns and the network mode")
        if host_config.get("ExtraHosts"):
            raise conflict("custom host-to-IP mapping and the network mode")
        if host_config.get("PortBindings") or host_config.get("PublishAllPorts"):
            raise conflict("port publishing and the container type network mode")
    if mac and (mode == "host" or mode.startswith("container:")):
        raise conflict("mac-address and the network mode")


def plan_networks(root: Path, store: ContainerStore, mode: str, cid: str, ip: str, aliases: list[str],
                  extra: EndpointRequest | None = None) -> dict[str, dict[str, Any]]:
    """The endpoints a new container gets for ``--network mode`` (Docker's errors, exit 125); ``extra``:
    run's ``--ip6``/``--link-local-ip`` (and links) for that network."""
    if mode.startswith("container:"):
        try:
            store.get(mode.partition(":")[2])
        except ContainerNotFound as e:
            raise StrataError(str(e), exit_code=125) from None
        if ip or aliases or (extra and extra.ip6):
            raise StrataError("conflicting options: networking options and container type network mode",
                              exit_code=125) if aliases else StrataError(
                "user specified IP address is supported on user defined networks only", exit_code=125)
        return {}
    name = "bridge" if mode == "default" else mode
    if mode == "default":  # Docker's CLI files --ip/--network-alias under "default": the daemon never sees them
        ip, aliases, extra = "", [], None
    if name in ("host", "none") and not ip and not aliases and extra is None:
        net_id = _predefined_id(root, name)  # what the network store answers, without loading it
        if net_id is not None:
            return {name: _settings(net_id, None, None, None, None)}
    from strata.container.network.networks import PREDEFINED, NetworkNotFound, NetworkStore

    try:
        net = NetworkStore(root).get(name)
    except NetworkNotFound:
        raise StrataError(f"network {name} not found", exit_code=125) from None
    if net.config_only:
        raise StrataError("cannot create endpoint on configuration-only network", exit_code=125)
    check_endpoint(net, ip, extra, exit_code=125)
    if aliases and net.name in PREDEFINED:
        raise StrataError("network-scoped aliases are only supported for user-defined networks", exit_code=125)
    more = [*aliases, cid[:12]] if net.name not in PREDEFINED else None
    return {net.name: endpoint_settings(net, ip, more, extra)}


def add_link_local(netns: Path, ep: dict[str, Any]) -> None:
    """The endpoint's ``--link-local-ip`` addresses on its interface (IPv4 as /16, IPv6 as /64, as
    libnetwork adds them)."""
    addrs = list((ep.get("IPAMConfig") or {}).get("LinkLocalIPs") or [])
    for addr in addrs:
        v4 = ipaddress.ip_address(addr).version == 4
        argv = ["nsenter", f"--net={netns}", "--", "ip", "addr", "add", f"{addr}/{16 if v4 else 64}",
                *(["brd", "+"] if v4 else []), "dev", str(ep.get("_ifname") or "eth0")]
        res = subprocess.run(argv, capture_output=True, text=True, check=False,
                             env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        if res.returncode != 0:
            raise StrataError(f"failed to add link-local address {addr}: {res.stderr.strip()}")


def bridged(c: Container, nets: NetworkStore) -> list[Network]:
    from strata.container.network.networks import NetworkNotFound

    out = []
    for name, ep in c.networks.items():
        if name in ("host", "none"):
            continue
        try:
            out.append(nets.get(str(ep.get("NetworkID") or name)))
        except NetworkNotFound:
            raise StrataError(f"network {name} not found", exit_code=125) from None
    return out


def netavark_endpoint(c: Container, net: Network, index: int) -> netavark.Endpoint:
    ep = c.networks[net.name]
    return {"interface": str(ep.get("_ifname") or f"eth{index}"), "ip": ep["IPAddress"], "mac": ep["MacAddress"],
            "aliases": [a for a in (ep.get("Aliases") or []) if a], "ip6": ep.get("GlobalIPv6Address") or ""}


def netavark_options_of(c: Container, nets: list[Network]) -> dict[str, Any]:
    from strata.container.network import netavark
    from strata.container.network.ports import Mapping

    pairs = [(n, netavark_endpoint(c, n, i)) for i, n in enumerate(nets)]
    ports = [Mapping.from_json(p) for p in c.ports]
    dns = [d for d in (c.host_config.get("Dns") or []) if d]
    return netavark.netavark_options(c.id, c.name, pairs, ports, dns)


def _assign(store: ContainerStore, c: Container, nets: list[Network]) -> Container:
    """Addresses, MACs and host ports for ``c``, recorded (under the networks lock) before use."""
    from strata.container.network.allocate import allocate_ports, endpoint_addresses

    others = [o for o in store.all() if o.id != c.id]
    networks = {k: dict(v) for k, v in c.networks.items()}
    mac_given = str(c.config.get("MacAddress") or "")
    for i, net in enumerate(nets):
        ep = networks[net.name]
        _check_start(net, ep)
        ep.update(endpoint_addresses(net, ep, others), _ifname=f"eth{i}")
        if mac_given and i == 0:
            ep["MacAddress"] = mac_given
    ports = allocate_ports(c, others, next(iter(networks.values()), {}).get("EndpointID", ""))
    return store.update(c.id, networks=networks, ports=[p.to_json() for p in ports],
                        netns=str(store.root / "netns" / c.id), net_owner=_me())


def _check_start(net: Network, ep: dict[str, Any]) -> None:
    """run's ``--ip6``/``--link-local-ip`` checked as the daemon does when it connects the endpoint."""
    ipam = ep.get("IPAMConfig") or {}
    if ipam.get("IPv6Address") or ipam.get("LinkLocalIPs"):
        check_endpoint(net, "", EndpointRequest(ip6=str(ipam.get("IPv6Address") or ""),
                                                link_local=list(ipam.get("LinkLocalIPs") or [])))


def _me() -> list[int]:
    return [os.getpid(), process_start(os.getpid())]


class Pending:
    """A namespace netavark is still setting up (the runtime may create the container meanwhile);
    ``wait()`` before the container starts. The networks lock is held until then."""

    def __init__(self, store: ContainerStore, c: Container, proc: subprocess.Popen[bytes] | None,
                 lock: ExitStack) -> None:
        self.store, self.c, self.proc, self.lock = store, c, proc, lock

    def wait(self) -> None:
        """Idempotent; a failed setup is torn down and raised."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        from strata.container.network import netavark

        try:
            netavark.collect(proc, "setup")
            for ep in self.c.networks.values():
                add_link_local(Path(self.c.netns), ep)
        except BaseException:
            _teardown_locked(self.store, self.store.by_id(self.c.id) or self.c)
            raise
        finally:
            self.lock.close()


if TYPE_CHECKING:
    Reconcile = Callable[[ContainerStore, Container], Container]


def setup_network(store: ContainerStore, c: Container, reconcile: Reconcile) -> tuple[Container, str | None, Pending]:
    """Before the runtime creates the container: its addresses and files, and its namespace being set
    up; (record, namespace path for the spec — None for a namespace of its own from the runtime or the
    host's with ``--network host`` —, the setup to wait for before the container starts).
    ``reconcile`` (the lifecycle's) brings another container's record up to date before its addresses,
    ports or namespace are trusted."""
    mode = str(c.host_config.get("NetworkMode") or "default")
    done = Pending(store, c, None, ExitStack())
    if mode.startswith("container:"):
        target, path = _joined_netns(store, mode.partition(":")[2], reconcile)
        config = {**c.config, "Hostname": target.config.get("Hostname"),
                  "Domainname": target.config.get("Domainname") or ""}
        return store.update(c.id, config=config), path, done
    if mode in ("default", "bridge") and is_rootless():  # pasta, as Podman 5's default
        c = _rootless_network(store, c, mode, reconcile)
        return c, c.netns, done
    if mode in ("host", "none"):
        _write_files(store, c, "", mode)
        return c, None, done
    from strata.container.network.networks import NetworkStore
    from strata.container.network.release import finish_releases

    nets_store = NetworkStore(store.root)
    lock = ExitStack()
    lock.enter_context(nets_store.locked())
    try:
        finish_releases(store.root)
        others = _live_others(store, c, reconcile)
        host, routes = _rootless_host(store.root)
        nets = [nets_store.routable(n, any(ep.get("NetworkID") == n.id and ep.get("IPAddress")
                                           for o in others for ep in o.networks.values()), routes)
                for n in bridged(c, nets_store)]
        c = _assign(store, c, nets)
        try:
            proc = _start_netavark(store, c, nets, mode, host)
        except BaseException:
            c = _teardown_locked(store, c)
            raise
    except BaseException:
        try:
            if is_rootless():  # a rootless namespace made for this container alone goes again
                from strata.container.network.rootlessnetns import release_unless_used

                release_unless_used(store.root, store.all())
        finally:
            lock.close()
        raise
    from strata.events import record_network

    for net in nets:
        record_network(store.root, "connect", net.id, net.name, c.id)
    return c, c.netns, Pending(store, c, proc, lock)


def _rootless_host(root: Path) -> tuple[Path | None, list[Any] | None]:
    """As root: (None, None): netavark works in this namespace, host routes count. Rootless: the rootless
    network namespace (made if missing) and its routes."""
    if not is_rootless():
        return None, None
    from strata.container.network import rootlessnetns

    host = rootlessnetns.setup(root)
    return host, rootlessnetns.routes(root)


def _start_netavark(store: ContainerStore, c: Container, nets: list[Network], mode: str,
                    host: Path | None) -> subprocess.Popen[bytes]:
    """Files, namespace and netavark's setup started (under the networks lock). Rootless (``host``),
    netavark runs in the rootless network namespace and a forwarder publishes the ports from the host."""
    from strata.container.network import netavark
    from strata.container.network.netns import create_netns
    from strata.container.network.ports import Mapping

    first = next(iter(c.networks.values()))
    _write_files(store, c, str(first.get("IPAddress") or ""), mode, nets[0] if nets else None,
                 str(first.get("GlobalIPv6Address") or ""))
    cdir = container_dir(store.root, c.id)
    if host is not None and c.host_config.get("UsernsMode") == "keep-id":
        from strata.rootless.keepid import make_namespaces

        Path(c.netns).parent.mkdir(parents=True, exist_ok=True)
        make_namespaces(cdir / "userns", Path(c.netns))
    else:
        create_netns(Path(c.netns))
    options = netavark_options_of(c, nets)
    write_bytes_atomic(cdir / "netavark.json", json.dumps(options).encode())
    if host is not None and c.ports:
        from strata.container.network import portfwd

        portfwd.start(host, [Mapping.from_json(p) for p in c.ports], str(first.get("IPAddress")),
                      cdir / portfwd.PID_FILE, f"{c.name} ({first.get('EndpointID')})")
    return netavark.start("setup", store.root / "networks" / "netavark", Path(c.netns), options, host)


def _rootless_network(store: ContainerStore, c: Container, mode: str, reconcile: Reconcile) -> Container:
    """A rootless container on the default network: a namespace of its own connected by pasta, its
    published ports forwarded from the host."""
    import secrets

    from strata.container.network import pasta
    from strata.container.network.allocate import allocate_ports
    from strata.container.network.netns import create_netns
    from strata.container.network.networks import NetworkStore

    with NetworkStore(store.root).locked():
        ports = allocate_ports(c, _live_others(store, c, reconcile), "")
        c = store.update(c.id, ports=[p.to_json() for p in ports], netns=str(store.root / "netns" / c.id),
                         net_owner=_me())
        cdir = container_dir(store.root, c.id)
        userns = cdir / "userns" if c.host_config.get("UsernsMode") == "keep-id" else None
        try:
            _write_files(store, c, "", mode)
            if userns is not None:  # keep-id: the network namespace belongs to the container's user namespace
                from strata.rootless.keepid import make_namespaces

                Path(c.netns).parent.mkdir(parents=True, exist_ok=True)
                make_namespaces(userns, Path(c.netns))
            else:
                create_netns(Path(c.netns))
            _connect(Path(c.netns), ports, cdir / pasta.PID_FILE, userns)
        except BaseException:
            c = _teardown_locked(store, c)
            raise
        live = {**pasta.endpoint(Path(c.netns)), "EndpointID": secrets.token_hex(32), "_ifname": "pasta"}
        c = store.update(c.id, networks={k: {**v, **live} for k, v in c.networks.items()})
    from strata.events import record_network

    for name, ep in c.networks.items():  # as a rootful bridge's: forget() logs the disconnect
        record_network(store.root, "connect", str(ep.get("NetworkID") or ""), name, c.id)
    return c


def _connect(netns: Path, ports: list[Mapping], pid_file: Path, userns: Path | None) -> None:
    """pasta (Podman 5's default), else or when ``STRATA_ROOTLESS_NETWORK=slirp4netns`` slirp4netns."""
    import shutil

    from strata.container.network import pasta, slirp

    wanted = os.environ.get("STRATA_ROOTLESS_NETWORK", "")
    if wanted == "slirp4netns" or (wanted != "pasta" and shutil.which("pasta") is None):
        pasta.check_privileged(ports)
        slirp.start(netns, ports, pid_file, userns)
    else:
        pasta.start(netns, ports, pid_file, userns)


def _live_others(store: ContainerStore, c: Container, reconcile: Reconcile) -> list[Container]:
    """The other containers holding addresses or ports, each reconciled first: a container whose
    monitor died gives them back here, not only at the next ``ps``."""
    out = []
    for o in store.all():
        if o.id != c.id and (o.netns or o.ports):
            o = reconcile(store, o)
            if o.netns or o.ports:
                out.append(o)
    return out


def _joined_netns(store: ContainerStore, ref: str, reconcile: Reconcile) -> tuple[Container, str | None]:
    """The container whose namespace ``--network container:ref`` joins, and that namespace's path
    (None: it runs on the host's)."""
    target = store.get(ref)
    target = reconcile(store, target)
    if target.state != "running":
        raise Conflict(f"cannot join network of a non running container: {target.id}", exit_code=125)
    if str(target.host_config.get("NetworkMode")) == "host":
        return target, None
    return target, target.netns or f"/proc/{target.pid}/ns/net"


def _write_files(store: ContainerStore, c: Container, ip: str, mode: str, net: Network | None = None,
                 ip6: str = "") -> None:
    cdir = container_dir(store.root, c.id)
    hc = c.host_config
    hostname, domain = str(c.config.get("Hostname") or ""), str(c.config.get("Domainname") or "")
    if mode == "host":  # the host's files; with --add-host, Docker's own hosts file instead
        try:
            hosts = Path("/etc/hosts").read_text()
        except OSError:
            hosts = hosts_file("", hostname, domain, [])
        if hc.get("ExtraHosts"):
            hosts = hosts_file("", hostname, domain, list(hc["ExtraHosts"]))
        resolv = host_resolv()
    else:
        hosts = hosts_file(ip, hostname, domain, list(hc.get("ExtraHosts") or []), ip6)
        embedded = net.gateway if (net is not None and net.dns) else None
        resolv = resolv_conf(host_resolv(), list(hc.get("Dns") or []), list(hc.get("DnsSearch") or []),
                             list(hc.get("DnsOptions") or []), embedded)
    write_bytes_atomic(cdir / "hosts", hosts.encode())
    write_bytes_atomic(cdir / "resolv.conf", resolv.encode())


def _teardown_locked(store: ContainerStore, c: Container, during: Callable[[], None] | None = None) -> Container:
    cdir = container_dir(store.root, c.id)
    pending = during
    _stop_helpers(cdir)
    if c.netns:
        from strata.container.network import netavark
        from strata.container.network.netns import remove_netns

        netns = Path(c.netns)
        try:
            options = json.loads((cdir / "netavark.json").read_text())
        except (OSError, ValueError):
            options = None
        host = _netavark_host(store.root)
        if options is not None and netns.exists() and host is not False:
            pending = None
            try:
                netavark.teardown(store.root / "networks" / "netavark", netns, options, during,
                                  host if isinstance(host, Path) else None)
            except StrataError:
                pass  # what netavark could not undo went with the namespace; nothing else can be done
        remove_netns(netns)
        (cdir / "netavark.json").unlink(missing_ok=True)
    if (cdir / "userns").exists():  # a keep-id container's own user namespace
        from strata.rootless.keepid import remove_namespaces

        remove_namespaces(cdir / "userns")
    if pending is not None:
        pending()
    c = forget(store, c)
    if is_rootless():  # the last container on a user-defined network takes the rootless namespace along
        from strata.container.network.rootlessnetns import release_unless_used

        release_unless_used(store.root, store.all())
    return c


def _stop_helpers(cdir: Path) -> None:
    """A rootless container's pasta (default network) or port forwarder (user-defined networks)."""
    if (cdir / "pasta.pid").exists():
        from strata.container.network import pasta

        pasta.stop(cdir / pasta.PID_FILE)
    if (cdir / "portfwd.pid").exists():
        from strata.container.network import portfwd

        portfwd.stop(cdir / portfwd.PID_FILE)


def _netavark_host(root: Path) -> Path | bool | None:
    """Where netavark runs: None (this process's namespace, as root); the rootless network namespace;
    False when a rootless store's is gone (and its bridges and rules with it: nothing to undo)."""
    if not is_rootless():
        return None
    from strata.container.network.rootlessnetns import is_namespace, netns_path

    return netns_path(root) if is_namespace(netns_path(root)) else False


def forget(store: ContainerStore, c: Container) -> Container:
    """The record without addresses, ports or namespace (the configured endpoints stay)."""
    networks = {k: {**{n: x for n, x in v.items() if n != "_ifname"}, **dict.fromkeys(_RUNTIME_KEYS, ""),
                    "IPPrefixLen": 0, "GlobalIPv6PrefixLen": 0} for k, v in c.networks.items()}
    if store.by_id(c.id) is None:
        return c
    from strata.events import record_network

    for name, ep in c.networks.items():
        if ep.get("IPAddress"):  # a live endpoint: Docker logs its release
            record_network(store.root, "disconnect", str(ep.get("NetworkID") or ""), name, c.id)
    return store.update(c.id, networks=networks, ports=[], netns="", net_owner=[])


def teardown_network(store: ContainerStore, c: Container, during: Callable[[], None] | None = None) -> Container:
    """Undo :func:`setup_network` (idempotent); the record keeps the configured endpoints only.
    ``during`` (called exactly once) runs while netavark works."""
    cur = store.by_id(c.id) or c
    if not cur.netns and not cur.ports and not any(ep.get("IPAddress") for ep in cur.networks.values()):
        if during is not None:
            during()
        return cur
    from strata.container.network.networks import NetworkStore

    with NetworkStore(store.root).locked():
        cur = store.by_id(c.id) or c
        return _teardown_locked(store, cur, during)


def release_if_orphaned(store: ContainerStore, c: Container) -> Container:
    """A container not running whose networking outlived the process that set it up: tear it down."""
    if c.running or not (c.netns or c.ports):
        return c
    owner = c.net_owner
    if owner and pid_alive(owner[0], owner[1] if len(owner) > 1 else 0):
        return c
    return teardown_network(store, c)
