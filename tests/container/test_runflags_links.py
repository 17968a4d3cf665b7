"""Legacy links (``run --link name[:alias]``, ``rm --link``) on the default bridge side by side with a
private Docker 20.10 daemon that has one (its own bridge, made here): the parent's ``ALIAS_*`` variables and
``/etc/hosts`` line, ``HostConfig.Links``, and the CLI's and daemon's errors and exit codes."""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import subprocess
from collections.abc import Iterator

import pytest
from container_helpers import Strata

import peers

pytestmark = [pytest.mark.runtime, pytest.mark.peers]


def _free_subnet(skip: int = 0) -> ipaddress.IPv4Network:
    """A /24 no route of this host overlaps (the ``skip`` first ones left for others)."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    used = [ipaddress.ip_network(w, strict=False) for w in re.findall(r"\b\d+\.\d+\.\d+\.\d+/\d+\b", routes)]
    free = [n for third in range(200, 250)
            if not any((n := ipaddress.ip_network(f"10.213.{third}.0/24")).overlaps(u) for u in used)]
    if len(free) <= skip:
        raise RuntimeError("no free 10.213.x.0/24 here")
    return free[skip]


@pytest.fixture(scope="module")
def bridged_dockerd() -> Iterator[peers.Dockerd]:
    """A private dockerd whose default bridge is a bridge of its own (the session's has none)."""
    name = f"rfl{secrets.token_hex(4)}"
    net = _free_subnet()
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{next(net.hosts())}/{net.prefixlen}", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        with peers.start_dockerd(extra_args=("--bridge", name)) as d:
            d.import_busybox()
            yield d
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def _error(res: subprocess.CompletedProcess[str]) -> str:
    # Docker's CLI sometimes logs its own race when run's start fails: not part of the answer
    text = re.sub(r'(?m)^time="[^"]*" level=error msg="error waiting for container: context canceled"\n?', "",
                  res.stderr).strip()
    text = re.sub(r"(?m)^(docker: )?(Error response from daemon: |Error: )?", "", text)
    text = re.sub(r"\n*Run '(docker|strata) \w+ --help' for more information$", "", text)
    text = re.sub(r"\.?\nSee '(docker|strata) \w+ --help'\.$", "", text).rstrip(".")  # run's own full stop
    return text.replace("strata", "X").replace("docker", "X")


def _ip(run: object, name: str) -> str:
    out: str = run("inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", name).stdout  # type: ignore[operator]
    return out.strip()


def _seen(text: str, ips: dict[str, str]) -> list[str]:
    for ip, label in ips.items():
        text = text.replace(ip, label)
    text = re.sub(r"\b[0-9a-f]{12}\b", "<ID>", text)
    text = re.sub(r"(?m)^(?!127\.)\d+\.\d+\.\d+\.\d+\t", "<OWN>\t", text)  # the parent's own line
    return sorted(line for line in text.split("\n") if line and not line.startswith(("HOSTNAME=", "SHLVL=")))


def test_link_variables_and_hosts_as_dockers(strata: Strata, busybox_image: str,
                                             bridged_dockerd: peers.Dockerd) -> None:
    d, image = bridged_dockerd, "strata-test/busybox:latest"
    srv = ["-d", "--name", "rfl-srv", "-e", "FOO=bar", "-e", "SP=a b", "--expose", "80", "--expose", "53/udp",
           "--expose", "8000-8003", "--expose", "9000-9001"]
    strata("run", *srv, busybox_image, "sleep", "300")
    d.run("run", *srv, image, "sleep", "300")
    try:
        script = "env; cat /etc/hosts"
        for link in ("rfl-srv:db", "rfl-srv", "rfl-srv:my-db"):
            args = ["run", "--rm", "--name", "rfl-parent", "--link", link, "-e", "DB_NAME=mine"]
            ours = strata(*args, busybox_image, "sh", "-c", script).stdout
            theirs = d.run(*args, image, "sh", "-c", script).stdout
            assert re.search(r"(?m)^\S+\t\S+ [0-9a-f]{12}( rfl-srv)?$", ours), ours
            assert _seen(ours, {_ip(strata, "rfl-srv"): "<SRV>"}) == _seen(theirs, {_ip(d.run, "rfl-srv"): "<SRV>"})
    finally:
        strata("rm", "-f", "rfl-srv", check=False)
        d.run("rm", "-f", "rfl-srv", check=False)


def test_link_errors_and_rm_link_as_dockers(strata: Strata, busybox_image: str,
                                            bridged_dockerd: peers.Dockerd) -> None:
    d, image = bridged_dockerd, "strata-test/busybox:latest"
    strata("run", "-d", "--name", "rfl-child", busybox_image, "sleep", "300")
    d.run("run", "-d", "--name", "rfl-child", image, "sleep", "300")

    def both(*args: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
        s = strata(*[busybox_image if a == "IMAGE" else a for a in args], check=False)
        t = d.run(*[image if a == "IMAGE" else a for a in args], check=False)
        return (s.returncode, "" if args[0] == "create" else s.stdout, _error(s)), (
            t.returncode, "" if args[0] == "create" else t.stdout, _error(t))

    try:
        for args in (["--link", "nosuch"], ["--link", "a:b:c"], ["--link", ""], ["--network", "none", "--link", "x"],
                     ["--network", "host", "--link", "rfl-child"], ["--network", "container:rfl-child", "--link", "x"]):
            ours, theirs = both("create", *args, "IMAGE", "true")
            assert ours == theirs, args
        for tool in (strata, d.run):
            tool("create", "--name", "rfl-par", "--link", "rfl-child:db", "--link", "rfl-child",
                 busybox_image if tool is strata else image, "true")
        def links(tool: object) -> list[str] | None:  # Docker's come from its link graph: a Go map's order
            out = json.loads(tool("inspect", "-f", "{{json .HostConfig.Links}}", "rfl-par").stdout)  # type: ignore[operator]
            return None if out is None else sorted(out)

        assert links(strata) == links(d.run) == ["/rfl-child:/rfl-par/db", "/rfl-child:/rfl-par/rfl-child"]

        def names(tool: object, *flags: str) -> list[str]:
            out: str = tool("ps", "-a", *flags, "--format", "{{.Names}}").stdout  # type: ignore[operator]
            return sorted(line for line in out.split() if "rfl-" in line)

        assert names(strata, "--no-trunc") == names(d.run, "--no-trunc") == ["rfl-child,rfl-par/db,rfl-par/rfl-child", "rfl-par"]
        assert names(strata) == names(d.run) == ["rfl-child", "rfl-par"]
        for args in (["rm", "--link", "rfl-child"], ["rm", "--link", "rfl-child/db"], ["rm", "--link", "/rfl-par/db"],
                     ["rm", "--link", "rfl-par/db"], ["rm", "-f", "--link", "rfl-par/db"], ["rm", "--link", "nosuch"]):
            ours, theirs = both(*args)
            assert ours == theirs, args
        assert links(strata) == links(d.run) == ["/rfl-child:/rfl-par/rfl-child"]
        for tool in (strata, d.run):
            tool("stop", "-t", "0", "rfl-child")
        ours, theirs = both("start", "rfl-par")
        assert ours == theirs
        assert "Cannot link to a non running container: /rfl-child AS /rfl-par/rfl-child" in ours[2]
        net = f"rfl{secrets.token_hex(3)}"
        for skip, tool in enumerate((strata, d.run)):
            tool("network", "create", "--subnet", str(_free_subnet(skip)), net)
            tool("run", "-d", "--name", "rfl-other", "--network", net, busybox_image if tool is strata else image,
                 "sleep", "300")
        ours, theirs = both("run", "--rm", "--link", "rfl-other:o", "IMAGE", "true")
        assert ours == theirs
        assert "Cannot link to /rfl-other, as it does not belong to the default network" in ours[2]
    finally:
        for name in ("rfl-par", "rfl-child", "rfl-other"):
            strata("rm", "-f", name, check=False)
            d.run("rm", "-f", name, check=False)
        for tool in (strata, d.run):
            for line in tool("network", "ls", "-q", "--filter", "name=rfl").stdout.split():
                tool("network", "rm", line, check=False)
