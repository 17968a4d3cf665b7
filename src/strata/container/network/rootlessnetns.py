"""The rootless network namespace (Podman's *rootless-netns*): where a rootless store's user-defined
networks live.

netavark makes bridges, veth pairs and iptables rules in the network namespace it runs in, which must be
one the user may change: a namespace created in the user's rootless user namespace (strata's commands run
as its root), kept by a bind mount at ``<root>/networks/rootless/netns`` in the rootless mount namespace.
netavark runs in it (``nsenter --net``) for every setup and teardown, aardvark-dns (its name server)
listens on the bridges' gateways there, and one pasta (else slirp4netns) connects it to the host for
outbound traffic. Published ports reach it through a forwarder per container
(:mod:`strata.container.network.portfwd`). Nothing in it can touch the host's interfaces or firewall.

Made when the first container on a user-defined network starts, removed (pasta ended, aardvark-dns ended,
the mount gone) when the last one stops; every step runs under the networks lock.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
from pathlib import Path

from strata.container.network.netns import create_netns, remove_netns
from strata.container.network.networks import PREDEFINED, host_routes
from strata.container.records import Container
from strata.errors import StrataError

__all__ = ["holds_endpoint", "is_namespace", "netns_path", "nsenter_prefix", "release", "release_unless_used", "routes", "setup"]

_PID_FILE = "pasta.pid"  # pasta's or slirp4netns's


def _dir(root: Path) -> Path:
    return root / "networks" / "rootless"


def netns_path(root: Path) -> Path:
    """Where the rootless network namespace of the store at ``root`` is kept (bind-mounted)."""
    return _dir(root) / "netns"


def nsenter_prefix(root: Path) -> list[str]:
    """The command prefix that runs a program (netavark) in the rootless network namespace."""
    return ["nsenter", f"--net={netns_path(root)}", "--"]


def is_namespace(path: Path) -> bool:
    """``path`` is a namespace file (a live bind mount of nsfs), not the empty file left under it."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def _connected(root: Path) -> bool:
    from strata.container.records import pid_alive

    try:
        pid = int((_dir(root) / _PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return False
    return pid_alive(pid)


def setup(root: Path) -> Path:
    """The rootless network namespace, made and connected to the host when missing (call under the
    networks lock); its path."""
    path = netns_path(root)
    if is_namespace(path):
        if not _connected(root):  # pasta died: connect the namespace again, its containers stay on it
            (_dir(root) / _PID_FILE).unlink(missing_ok=True)
            _connect(path, _dir(root) / _PID_FILE)
        return path
    release(root)  # what a killed process left: the file of a namespace that is gone
    shutil.rmtree(root / "networks" / "netavark" / "aardvark-dns", ignore_errors=True)  # its names went with it
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    create_netns(path)
    try:
        _loopback_up(path)
        _connect(path, _dir(root) / _PID_FILE)
    except BaseException:
        release(root)
        raise
    return path


def routes(root: Path) -> list[tuple[str, ipaddress.IPv4Network]]:
    """The IPv4 routes of the rootless network namespace (pasta's copy of the host's outbound interface
    and the bridges there), for the subnet check of a network about to be set up in it."""
    done = subprocess.run([*nsenter_prefix(root), "cat", "/proc/net/route"], capture_output=True, text=True,
                          check=False, stdin=subprocess.DEVNULL)  # fmt: skip
    return host_routes(done.stdout) if done.returncode == 0 else []


def _loopback_up(path: Path) -> None:
    done = subprocess.run(["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"], capture_output=True,
                          text=True, check=False, stdin=subprocess.DEVNULL)  # fmt: skip
    if done.returncode != 0:
        raise StrataError(f"setting up the rootless network namespace: {done.stderr.strip()}", exit_code=125)


def _connect(path: Path, pid_file: Path) -> None:
    """pasta connects the namespace to the host (outbound only: no port of the host forwarded into it,
    none of its ports out); slirp4netns where pasta is missing or ``STRATA_ROOTLESS_NETWORK`` asks."""
    from strata.container.network import pasta, slirp

    wanted = os.environ.get("STRATA_ROOTLESS_NETWORK", "")
    if wanted == "slirp4netns" or (wanted != "pasta" and shutil.which("pasta") is None):
        slirp.start(path, [], pid_file)
    else:
        pasta.start(path, [], pid_file)


def _stop_aardvark(root: Path) -> None:
    """aardvark-dns of this store (netavark ends it with the last container on a DNS network; a killed
    teardown may have left it)."""
    pid_file = root / "networks" / "netavark" / "aardvark-dns" / "aardvark.pid"
    try:
        pid = int(pid_file.read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return
    if comm.startswith("aardvark"):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    pid_file.unlink(missing_ok=True)


def release(root: Path) -> None:
    """End pasta and aardvark-dns and remove the namespace (its bridges and rules go with it)."""
    from strata.container.network import pasta

    pasta.stop(_dir(root) / _PID_FILE)
    _stop_aardvark(root)
    if os.path.lexists(netns_path(root)):
        remove_netns(netns_path(root))
    for name in ("slirp4netns.sock", "slirp4netns.log"):
        (_dir(root) / name).unlink(missing_ok=True)


def holds_endpoint(c: Container) -> bool:
    """Whether ``c`` has a live endpoint in the rootless network namespace (a user-defined network)."""
    return bool(c.netns) and any(name not in PREDEFINED and ep.get("IPAddress") for name, ep in c.networks.items())


def release_unless_used(root: Path, containers: list[Container]) -> None:
    """After a teardown (under the networks lock): remove the namespace if no container is on it."""
    if not any(holds_endpoint(c) for c in containers) and os.path.lexists(netns_path(root)):
        release(root)
