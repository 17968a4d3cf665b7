"""The same network commands through Docker 20.10 and strata, outputs side by side.

The private dockerd has no default bridge (``--bridge=none``, no iptables, no proxy), so both sides use
a user network of their own subnet; Docker still allocates and reports published ports. IDs, names'
addresses and port numbers are normalised; everything else must be equal. Known, deliberate
difference: on a user network Docker's resolv.conf names its in-namespace resolver 127.0.0.11,
strata's names aardvark-dns on the network's gateway."""

from __future__ import annotations

import json
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from container_helpers import Strata, cleanup, runtime_missing

from peers import BUSYBOX_APPLETS, Dockerd, busybox_rootfs_tar

pytestmark = [pytest.mark.peers, pytest.mark.runtime]

APPLETS = (*BUSYBOX_APPLETS, "httpd", "ip", "hostname")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sides(tmp_path: Path, dockerd: Dockerd) -> Iterator[dict[str, Any]]:
    reason = runtime_missing()
    if reason:
        pytest.skip(reason)
    tar = busybox_rootfs_tar(tmp_path / "web.tar", applets=APPLETS)
    octet = secrets.randbelow(200) + 20
    s = Strata(tmp_path / "root")
    s("import", "-c", 'CMD ["/bin/sh"]', str(tar), "web:1")
    dockerd.run("import", "-c", 'CMD ["/bin/sh"]', str(tar), "web:1")
    tag = secrets.token_hex(3)
    out: dict[str, Any] = {
        "docker": {"run": lambda *a: dockerd.run(*a, check=False), "net": f"dn{tag}",
                   "subnet": f"10.217.{octet}", "port": _free_port()},
        "strata": {"run": lambda *a: s(*a, check=False), "net": f"sn{tag}",
                   "subnet": f"10.218.{octet}", "port": _free_port()},
    }
    yield out
    for name in ("web", "second"):
        dockerd.run("rm", "-f", name, check=False)
    dockerd.run("network", "rm", out["docker"]["net"], check=False)
    dockerd.run("rmi", "web:1", check=False)
    cleanup(s)
    s("network", "rm", out["strata"]["net"], check=False)


def _norm(text: str, side: dict[str, Any]) -> str:
    text = text.replace(side["net"], "NET").replace(side["subnet"] + ".", "SUBNET.")
    text = re.sub(r"\b[0-9a-f]{64}\b", "ID", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "SHORT", text)
    text = text.replace(f":{side['port']}", ":PORT").replace(f'"{side["port"]}"', '"PORT"')
    text = re.sub(r"02:42:0a:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}", "MAC", text)
    text = re.sub(r"(0\.0\.0\.0:|\"HostPort\":\")(3\d{4}|[4-6]\d{4})", r"\1EPHEMERAL", text)
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)", "TIME", text)


def _both(sides: dict[str, Any], make: Callable[[dict[str, Any]], list[str]]) -> dict[str, tuple[int, str, str]]:
    out = {}
    for name, side in sides.items():
        res = side["run"](*make(side))
        err = res.stderr.removeprefix("docker: Error response from daemon: ").removeprefix("Error: ")
        err = err.removeprefix("docker: ").removeprefix("Error response from daemon: ")
        err = "\n".join(ln for ln in err.splitlines() if not ln.startswith('time="'))  # docker's client log
        err = err.split("\nSee '")[0].strip().rstrip(".")
        out[name] = (res.returncode, _norm(res.stdout, side), _norm(err, side))
    return out


def _sorted_json(line: str) -> str:
    """A JSON object's list values in a fixed order (other lines as they are)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return line
    if isinstance(doc, dict):
        doc = {k: sorted(v, key=json.dumps) if isinstance(v, list) else v for k, v in doc.items()}
    return json.dumps(doc, sort_keys=True)


def _same(sides: dict[str, Any], make: Callable[[dict[str, Any]], list[str]], *, any_order: bool = False
          ) -> tuple[int, str, str]:
    got = _both(sides, make)
    if any_order:  # Docker's order varies from run to run (a Go map, bindings in allocation order)
        got = {k: (c, "\n".join(sorted(_sorted_json(line) for line in o.splitlines())), e)
               for k, (c, o, e) in got.items()}
    assert got["strata"] == got["docker"], make(sides["strata"])
    return got["strata"]


def test_network_commands_match_docker(sides: dict[str, Any]) -> None:
    _same(sides, lambda s: ["network", "create", "--subnet", f"{s['subnet']}.0/24", s["net"]])
    _same(sides, lambda s: ["network", "create", s["net"]])
    _same(sides, lambda s: ["network", "inspect", s["net"]])
    _same(sides, lambda s: ["network", "ls", "--filter", f"name={s['net']}", "--format", "{{.Name}} {{.Driver}}"])
    _same(sides, lambda s: ["run", "-d", "--name", "web", "--network", s["net"], "--network-alias", "www",
                            "-p", f"127.0.0.1:{s['port']}:80", "-p", "80", "--expose", "7000-7001",
                            "web:1", "httpd", "-f", "-p", "80"])
    # the session's dockerd is shared: list only this test's containers
    assert "->80/tcp" in _same(sides, lambda s: ["ps", "--filter", "name=^/web$", "--format", "{{.Ports}}"])[1]
    _same(sides, lambda s: ["port", "web"], any_order=True)
    _same(sides, lambda s: ["port", "web", "80"], any_order=True)
    _same(sides, lambda s: ["port", "web", "81"])
    _same(sides, lambda s: ["inspect", "-f", "{{json .HostConfig.PortBindings}} {{json .Config.ExposedPorts}}",
                            "web"])
    code, out, _ = _same(sides, lambda s: ["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"], any_order=True)
    assert code == 0 and "EPHEMERAL" in out
    _same(sides, lambda s: ["inspect", "-f", "{{json .NetworkSettings.Networks}}", "web"])
    _same(sides, lambda s: ["network", "inspect", "-f", "{{json .Containers}}", s["net"]])
    _same(sides, lambda s: ["run", "--rm", "--network", s["net"], "-h", "box", "--domainname", "ex.test",
                            "--add-host", "db:10.1.2.3", "web:1", "sh", "-c", "cat /etc/hosts; hostname"])
    _same(sides, lambda s: ["run", "-d", "--name", "second", "--network", s["net"], "-p",
                            f"127.0.0.1:{s['port']}:80", "web:1", "sleep", "1000"])
    listed = _same(sides, lambda s: ["ps", "-a", "--filter", "name=^/web$", "--filter", "name=^/second$",
                                     "--format", "{{.Names}} {{.State}}"])  # Status says how long: racy
    assert listed[1].splitlines() == ["second created", "web running"]
    _same(sides, lambda s: ["network", "rm", s["net"]])


def test_network_errors_match_docker(sides: dict[str, Any]) -> None:
    _same(sides, lambda s: ["network", "create", "--subnet", f"{s['subnet']}.0/24", s["net"]])
    _same(sides, lambda s: ["run", "--rm", "--network", "nosuchnet", "web:1", "true"])
    _same(sides, lambda s: ["run", "--rm", "--network", s["net"], "--ip", "10.99.0.50", "web:1", "true"])
    _same(sides, lambda s: ["run", "--rm", "--network", s["net"], "--ip", f"{s['subnet']}.50", "web:1",
                            "sh", "-c", "ip -o -4 addr show eth0 | cut -d' ' -f2-7"])
    for flags in (["-p", "abc"], ["-p", "1.2.3:80:80"], ["-p", "80/icmp"], ["--add-host", "nohost"],
                  ["--dns", "x"]):
        _same(sides, lambda s, f=flags: ["run", "--rm", *f, "web:1", "true"])  # type: ignore[misc]
    _same(sides, lambda s: ["network", "create", "--subnet", f"{s['subnet']}.128/25", "overlapping"])
    for args in (["--subnet", "nonsense"], ["--subnet", "10.1.0.0/33"], ["--gateway", "10.9.9.9"],
                 ["--subnet", "10.232.1.0/24", "--subnet", "10.232.2.0/24"], ["-d", "nosuch"], ["-d", "overlay"]):
        _same(sides, lambda s, a=args: ["network", "create", *a, "broken"])  # type: ignore[misc]
    _same(sides, lambda s: ["network", "ls", "--filter", "bad=1"])
    _same(sides, lambda s: ["network", "ls", "--filter", "type=nonsense"])
    _same(sides, lambda s: ["network", "create", "--internal", "--label", "a=b", "-o", "foo=bar",
                            f"{s['net']}/x"])
    _same(sides, lambda s: ["network", "ls", "--filter", "label=a", "--format",
                            "{{.Name}} {{.Labels}} {{.Internal}} {{.IPv6}} {{.Scope}}"])
    _same(sides, lambda s: ["network", "inspect", "-f", "{{json .Options}} {{json .Labels}} {{.Internal}}",
                            f"{s['net']}/x"])
    _same(sides, lambda s: ["network", "rm", f"{s['net']}/x"])
    _same(sides, lambda s: ["network", "inspect", "nosuchnet"])
    _same(sides, lambda s: ["network", "rm", "nosuchnet"])
    _same(sides, lambda s: ["run", "-d", "--name", "web", "--network", s["net"], "web:1", "sleep", "1000"])
    _same(sides, lambda s: ["run", "--rm", "--network", "container:web", "-p", "81:80", "web:1", "true"])
    _same(sides, lambda s: ["run", "--rm", "--network", "container:web", "-h", "x", "web:1", "true"])
    _same(sides, lambda s: ["network", "disconnect", "none", "web"])
    _same(sides, lambda s: ["network", "prune", "-f"])
    _same(sides, lambda s: ["rm", "-f", "web"])
    got = _same(sides, lambda s: ["network", "prune", "-f"])
    assert got == (0, "Deleted Networks:\nNET\n\n", "")


def test_docker_and_strata_resolv_conf_on_a_user_network(sides: dict[str, Any]) -> None:
    _same(sides, lambda s: ["network", "create", "--subnet", f"{s['subnet']}.0/24", s["net"]])
    got = _both(sides, lambda s: ["run", "--rm", "--network", s["net"], "web:1", "cat", "/etc/resolv.conf"])
    assert got["docker"][1].endswith("nameserver 127.0.0.11\noptions ndots:0\n")
    assert got["strata"][1].endswith("nameserver SUBNET.1\noptions ndots:0\n")
    assert json.dumps(got["docker"][1].splitlines()[:-2]) == json.dumps(got["strata"][1].splitlines()[:-2])
