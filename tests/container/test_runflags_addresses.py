"""``run``/``create --ip6`` and ``--link-local-ip`` side by side with Docker 20.10: the create-time check
(an IPv6 address), the endpoint's ``IPAMConfig``, the start-time errors (a static IPv6 address needs a
user-defined network with an IPv6 subnet; link-local addresses must be link-local) and their exit codes."""

from __future__ import annotations

import ipaddress
import re
import secrets
import subprocess

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = [pytest.mark.runtime, pytest.mark.peers]

_CASES = [["--ip6", "foo"], ["--ip6", "2001:db8::1"], ["--ip6", "1.2.3.4"], ["--link-local-ip", "foo"],
          ["--link-local-ip", "10.1.1.1"], ["--link-local-ip", "169.254.9.9"],
          ["--link-local-ip", "169.254.9.9", "--link-local-ip", "bar"], ["--ip6", "2001:db8::1", "--link-local-ip", "x"]]


def _subnets(count: int) -> list[str]:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    used = [ipaddress.ip_network(w, strict=False) for w in re.findall(r"\b\d+\.\d+\.\d+\.\d+/\d+\b", routes)]
    free = [str(n) for third in range(150, 200) if not any(
        (n := ipaddress.ip_network(f"10.214.{third}.0/24")).overlaps(u) for u in used)]
    return free[:count]


def _error(text: str, cid: str) -> str:
    text = re.sub(r"(?m)^(Error response from daemon: |Error: )", "", text.strip())
    return text.replace(cid, "<C>")


def _attempt(tool: object, image: str, net: str, args: list[str]) -> tuple[object, ...]:
    res = tool("create", "--network", net, *args, image, "true", check=False)  # type: ignore[operator]
    if res.returncode != 0:
        return ("create", res.returncode, _error(res.stderr, ""))
    cid = res.stdout.strip()
    try:
        ipam = tool("inspect", "-f", f"{{{{json .NetworkSettings.Networks.{net}.IPAMConfig}}}}", cid).stdout  # type: ignore[operator]
        start = tool("start", cid, check=False)  # type: ignore[operator]
        return ("start", ipam, start.returncode, _error(start.stderr, cid))
    finally:
        tool("rm", "-f", cid, check=False)  # type: ignore[operator]


def test_ip6_and_link_local_ip_as_dockers(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                          docker_busybox: str) -> None:
    net = f"rfa{secrets.token_hex(4)}"
    ours_subnet, theirs_subnet = _subnets(2)
    strata("network", "create", "--subnet", ours_subnet, net)
    dockerd.run("network", "create", "--subnet", theirs_subnet, net)
    try:
        for mode in ("none", "host", net):
            for args in _CASES:
                ours = _attempt(strata, busybox_image, mode, args)
                theirs = _attempt(dockerd.run, docker_busybox, mode, args)
                assert ours == theirs, (mode, args)
    finally:
        strata("network", "rm", net, check=False)
        dockerd.run("network", "rm", net, check=False)


def test_default_network_files_them_away(strata: Strata, busybox_image: str) -> None:
    """Docker's CLI files them under ``default``, which the daemon never connects: accepted, unused."""
    res = strata("run", "--rm", "--ip6", "foo", "--link-local-ip", "bar", busybox_image, "echo", "ok")
    assert (res.returncode, res.stdout) == (0, "ok\n")
