"""Networks of one store: one JSON file each under ``<root>/networks/``, written atomically.

``bridge`` (the default, its subnet from the config file's ``bip`` or the first free pool of
``default-address-pools``), ``host`` and ``none`` always exist, as in Docker. ``lock`` serialises
every change and every address or port allocation, across strata processes.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from strata.atomicfile import write_bytes_atomic
from strata.container.runtime import config_value
from strata.errors import NotFound, StrataError

__all__ = [
    "PREDEFINED",
    "Network",
    "NetworkNotFound",
    "NetworkStore",
    "host_addresses",
    "host_routes",
]

PREDEFINED = ("bridge", "host", "none")
_DEFAULT_POOLS = [{"base": f"172.{n}.0.0/16", "size": 16} for n in range(17, 32)] + [
    {"base": "192.168.0.0/16", "size": 20}
]


_HELD: dict[tuple[int, Path], int] = {}  # per thread: another thread of the process waits for the flock


class NetworkNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such network: {ref}")


@dataclass
class Network:
    name: str
    id: str
    driver: str  # bridge | host | null
    created: float
    subnet: str = ""
    gateway: str = ""
    interface: str = ""
    internal: bool = False
    dns: bool = False
    show_gateway: bool = True  # Docker lists the IPAM gateway unless a --subnet came without --gateway
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    user_subnet: bool = True  # the IPv4 subnet came from --subnet (a user IP can be asked for)
    ip_range: str = ""  # --ip-range: where containers' addresses come from
    aux: dict[str, str] = field(default_factory=dict)  # --aux-address: reserved, never handed out
    ipv6: bool = False  # EnableIPv6: containers get an address of subnet6 too
    subnet6: str = ""  # an IPv6 --subnet (kept, and shown, even without --ipv6, as Docker does)
    gateway6: str = ""
    show_gateway6: bool = False
    ip_range6: str = ""
    aux6: dict[str, str] = field(default_factory=dict)
    attachable: bool = False
    config_only: bool = False  # --config-only: a template (driver null), no containers
    config_from: str = ""  # --config-from: the config-only network this one took its settings from
    ipam_driver: str = "default"
    ipam_options: dict[str, str] | None = None

    @property
    def prefix_len(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen if self.subnet else 0

    @property
    def short_id(self) -> str:
        return self.id[:12]


def host_routes(text: str | None = None) -> list[tuple[str, ipaddress.IPv4Network]]:
    """(interface, destination) of the host's IPv4 routes (or of the ``/proc/net/route`` ``text`` of
    another namespace), the default route left out."""
    out = []
    try:
        lines = (Path("/proc/net/route").read_text() if text is None else text).splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        f = line.split()
        if len(f) < 8 or f[1] == "00000000":
            continue
        dest = socket.inet_ntoa(struct.pack("<I", int(f[1], 16)))
        mask = socket.inet_ntoa(struct.pack("<I", int(f[7], 16)))
        try:
            out.append((f[0], ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)))
        except ValueError:
            continue
    return out


def host_addresses() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks of the host's interface addresses (netlink RTM_GETADDR), loopback left out: an
    interface that is down has its address but no route, and takes its subnet back when it comes up."""
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
            sock.sendall(struct.pack("=IHHIIBBBBI", 24, 22, 0x301, 1, 0, socket.AF_INET, 0, 0, 0, 0))
            return _addr_replies(sock)
    except OSError:
        return []


def _addr_replies(sock: socket.socket) -> list[ipaddress.IPv4Network]:
    """The RTM_NEWADDR answers of a dump, up to NLMSG_DONE (or an error)."""
    out: list[ipaddress.IPv4Network] = []
    while True:
        data = sock.recv(65536)
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            if kind in (2, 3) or length < 16:  # NLMSG_ERROR, NLMSG_DONE
                return out
            if kind == 20 and length >= 24:
                prefix = data[off + 17]
                attr = off + 24
                while attr + 4 <= off + length:
                    alen, atype = struct.unpack_from("=HH", data, attr)
                    if alen < 4:
                        break
                    if atype in (1, 2) and alen == 8:  # IFA_ADDRESS / IFA_LOCAL
                        net = ipaddress.IPv4Network((data[attr + 4:attr + 8], prefix), strict=False)
                        if not net.is_loopback and net not in out:
                            out.append(net)
                    attr += (alen + 3) & ~3
            off += (length + 3) & ~3


class NetworkStore:
    """The networks of the store at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "networks"
        self.dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The exclusive lock of this store's networks (re-entrant within one thread)."""
        key = (threading.get_ident(), self.dir)
        if _HELD.get(key):
            _HELD[key] += 1
            try:
                yield
            finally:
                _HELD[key] -= 1
            return
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _HELD[key] = 1
            yield
        finally:
            _HELD.pop(key, None)
            os.close(fd)

    def _load(self) -> list[Network]:
        out = []
        for path in self.dir.glob("*.json"):
            try:
                out.append(Network(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return out

    def save(self, net: Network) -> None:
        write_bytes_atomic(self.dir / f"{net.id}.json", json.dumps(asdict(net), indent=1).encode())

    def all(self) -> list[Network]:
        nets = self._load()
        if not {"bridge", "host", "none"} <= {n.name for n in nets}:
            with self.locked():
                nets = self._ensure_defaults(self._load())
        return sorted(nets, key=lambda n: n.name)

    def get(self, ref: str) -> Network:
        """By exact name, full ID, then unique ID prefix (Docker's order)."""
        nets = self.all()
        for n in nets:
            if ref in (n.name, n.id):
                return n
        found = [n for n in nets if ref and n.id.startswith(ref)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise StrataError(f"network {ref} is ambiguous ({len(found)} matches found based on ID prefix)")
        raise NetworkNotFound(ref)

    def remove(self, net: Network) -> None:
        (self.dir / f"{net.id}.json").unlink(missing_ok=True)

    def _ensure_defaults(self, nets: list[Network]) -> list[Network]:
        names = {n.name for n in nets}
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in names:
                net = Network(name=name, id=_new_id(), driver=driver, created=time.time())
                self.save(net)
                nets.append(net)
        if "bridge" not in names:
            net = self._default_bridge(nets)
            self.save(net)
            nets.append(net)
        return nets

    def _default_bridge(self, nets: list[Network]) -> Network:
        bip = config_value("bip")
        if isinstance(bip, str) and bip:
            try:
                iface = ipaddress.ip_interface(bip)
            except ValueError:
                raise StrataError(f"invalid bip {bip!r} in the config file") from None
            subnet, gateway = str(iface.network), str(iface.ip)
        else:
            subnet = self.free_subnet(nets)
            gateway = str(next(ipaddress.ip_network(subnet).hosts()))
        name = config_value("bridge")
        default_root = Path("/var/lib/strata")
        if not isinstance(name, str) or not name:
            name = "strata0" if self.root == default_root else "strata-" + hashlib.sha256(
                str(self.root).encode()).hexdigest()[:8]
        return Network(
            name="bridge", id=_new_id(), driver="bridge", created=time.time(), subnet=subnet, gateway=gateway,
            interface=name, options=_bridge_options(name),
        )

    def free_subnet(self, nets: list[Network]) -> str:
        """The first subnet of the address pools clashing with no network here, no host route and no host
        interface's address (Docker's FindAvailableNetwork)."""
        pools = config_value("default-address-pools")
        if not isinstance(pools, list) or not pools:
            pools = _DEFAULT_POOLS
        taken = [ipaddress.ip_network(n.subnet) for n in nets if n.subnet and not n.config_only]
        taken += [r for _, r in host_routes()] + host_addresses()
        for pool in pools:
            try:
                base = ipaddress.ip_network(str(pool["base"]))
                size = int(pool["size"])
            except (KeyError, ValueError, TypeError):
                raise StrataError(f"invalid default-address-pools entry {pool!r} in the config file") from None
            for cand in base.subnets(new_prefix=size) if size >= base.prefixlen else []:
                if not any(cand.overlaps(t) for t in taken):
                    return str(cand)
        raise StrataError("could not find an available, non-overlapping IPv4 address pool among the defaults "
                          "to assign to the network")

    def routable(self, net: Network, in_use: bool,
                 routes: list[tuple[str, ipaddress.IPv4Network]] | None = None) -> Network:
        """``net`` if its subnet clashes with no route of another host interface (``routes``: those of the
        namespace its bridge goes to, a rootless store's); the default bridge (subnet not from ``bip``, no
        container on it) moves to a free subnet; otherwise Docker's error."""
        clash = [(iface, r) for iface, r in (host_routes() if routes is None else routes)
                 if iface != net.interface and net.subnet and r.overlaps(ipaddress.ip_network(net.subnet))]
        if not clash:
            return net
        if net.name == "bridge" and not in_use and not config_value("bip"):
            subnet = self.free_subnet(self._load())
            net.subnet, net.gateway = subnet, str(next(ipaddress.ip_network(subnet).hosts()))
            self.save(net)
            return net
        iface, route = clash[0]
        raise StrataError(f"cannot set up network {net.name}: its subnet {net.subnet} overlaps {route} on {iface}",
                          exit_code=125)


def _bridge_options(name: str) -> dict[str, str]:
    return {
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.bridge.enable_icc": "true",
        "com.docker.network.bridge.enable_ip_masquerade": "true",
        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
        "com.docker.network.bridge.name": name,
        "com.docker.network.driver.mtu": "1500",
    }


def _new_id() -> str:
    return secrets.token_hex(32)
