"""Rootless networking through pasta (Debian's ``passt``), as Podman's default: netavark needs the host's
root, so a rootless container's network namespace is connected by a ``pasta`` process that runs as the
user in the host's network namespace and copies the host's address and routes into the container's
(outbound connections leave as the user's own sockets). ``-p`` forwards a host port (bound by pasta, e.g.
``127.0.0.1:8080``) to the container's port; nothing else from the host reaches the container, and the
container does not reach the host's loopback (``--no-map-gw``, Podman's default). pasta quits when the
namespace file goes away; its pid file lets teardown end it at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

from strata.container.network.ports import Mapping
from strata.errors import StrataError

__all__ = ["PID_FILE", "check_privileged", "endpoint", "pasta_args", "start", "stop", "wait_gone"]

PID_FILE = "pasta.pid"  # in the container's directory


def _spec(ports: list[Mapping], protocol: str) -> list[str]:
    specs = [f"{m.host_ip + '/' if m.host_ip else ''}{m.host_port}:{m.container_port}"
             for m in ports if m.protocol == protocol]
    return [",".join(specs)] if specs else ["none"]  # fmt: skip


def pasta_args(netns: Path, ports: list[Mapping], pid_file: Path, userns: Path | None = None) -> list[str]:
    """pasta's command line: configure the namespace's interface, forward exactly the published ports
    (no automatic forwarding either way), no gateway mapping to the host's loopback."""
    return [
        "pasta", "--config-net", "--quiet", "--no-map-gw",
        "-t", *_spec(ports, "tcp"), "-u", *_spec(ports, "udp"), "-T", "none", "-U", "none",
        "--pid", str(pid_file), *(["--userns", str(userns)] if userns else []), "--netns", str(netns),
    ]  # fmt: skip


def check_privileged(ports: list[Mapping]) -> None:
    """Podman's error for a host port below ``ip_unprivileged_port_start`` (a user may not bind it)."""
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return
    for m in ports:
        if m.host_port < first:
            raise StrataError(
                f"rootlessport cannot expose privileged port {m.host_port}, you can add "
                f"'net.ipv4.ip_unprivileged_port_start={m.host_port}' to /etc/sysctl.conf (currently {first}), "
                f"or choose a larger port number (>= {first}): listen {m.protocol} "
                f"{m.host_ip or '0.0.0.0'}:{m.host_port}: bind: permission denied",
                exit_code=125,
            )


def start(netns: Path, ports: list[Mapping], pid_file: Path, userns: Path | None = None) -> None:
    """Connect ``netns`` (pasta forks to the background once the namespace is set up)."""
    check_privileged(ports)
    if shutil.which("pasta") is None:
        raise StrataError(
            "rootless networking needs pasta: install the passt package (apt-get install passt), "
            "or use --network none or --network host",
            exit_code=125,
        )
    done = subprocess.run(pasta_args(netns, ports, pid_file, userns), capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip() and "syslog" not in ln]
        detail = lines[-1] if lines else f"exit status {done.returncode}"
        raise StrataError(f"setting up pasta for the rootless network: {detail}", exit_code=125)


def _ip_json(netns: Path, *args: str) -> list[dict[str, object]]:
    done = subprocess.run(["nsenter", f"--net={netns}", "ip", "-j", "-4", *args], capture_output=True,
                          text=True, check=False, stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        data = json.loads(done.stdout or "[]")
    except ValueError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def endpoint(netns: Path) -> dict[str, object]:
    """What pasta configured in ``netns`` (the host's address, prefix, gateway; the interface's MAC), as
    endpoint fields; empty when it cannot be read."""
    route = next(iter(_ip_json(netns, "route", "show", "default")), {})
    dev = str(route.get("dev") or "")
    link = next(iter(_ip_json(netns, "addr", "show", "dev", dev)), {}) if dev else {}
    infos = link.get("addr_info")
    addr = next((a for a in infos if isinstance(a, dict)), {}) if isinstance(infos, list) else {}
    if not addr.get("local"):
        return {}
    return {"IPAddress": str(addr["local"]), "IPPrefixLen": int(str(addr.get("prefixlen") or 0)),
            "Gateway": str(route.get("gateway") or ""), "MacAddress": str(link.get("address") or "")}  # fmt: skip


def stop(pid_file: Path) -> None:
    """End the pasta (or slirp4netns) process recorded in ``pid_file`` (only if that pid is still one)."""
    try:
        pid = int(pid_file.read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if comm.startswith(("pasta", "passt", "slirp4netns")):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        wait_gone(pid)  # its ports are free when this returns (a restart binds them again at once)
    pid_file.unlink(missing_ok=True)


def wait_gone(pid: int, timeout: float = 5.0) -> None:
    """Until ``pid`` (not our child: pasta daemonizes) has exited or is a zombie; SIGKILL after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            deadline += timeout
        time.sleep(0.02)
