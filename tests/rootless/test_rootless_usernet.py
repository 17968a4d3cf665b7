"""Rootless containers on user-defined networks, as Podman's rootless-netns: netavark and aardvark-dns run in
a network namespace of the user's rootless user namespace (connected to the host by pasta), containers
reach each other by name and address, ``-p 127.0.0.1:PORT:80`` answers on the host's loopback (a forwarder
into that namespace), ``network connect``/``disconnect``/``rm``/``inspect`` work, and nothing (process,
mount) is left once the last container is gone. The namespace cannot touch the host's interfaces or
firewall."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from rootlesshelpers import User, free_port, http_get, import_busybox

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
    pytest.mark.skipif(shutil.which("pasta") is None, reason="needs pasta (passt)"),
    pytest.mark.skipif(not Path("/usr/lib/podman/netavark").exists() and shutil.which("netavark") is None,
                       reason="needs netavark"),
]


@pytest.fixture(scope="module")
def image(user: User) -> str:
    return import_busybox(user, "unet:1")


def _store(user: User) -> Path:
    return user.home / ".local" / "share" / "strata"




def _user_processes(user: User) -> list[str]:
    """The user's pasta, aardvark-dns and port forwarders (the pause process and strata itself aside)."""
    out = subprocess.run(["ps", "-u", str(user.uid), "-o", "pid=,args="], capture_output=True, text=True,
                         check=False).stdout  # fmt: skip
    return [line.strip() for line in out.splitlines()
            if any(word in line for word in ("pasta", "aardvark", "strata-portfwd", "slirp4netns"))]  # fmt: skip


def _exec_until(user: User, name: str, *cmd: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        done = user.strata("exec", name, *cmd, check=False)
        if done.returncode == 0 or time.monotonic() > deadline:
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout
        time.sleep(0.3)


@pytest.mark.parametrize("connector", ["pasta", "slirp4netns"])
def test_two_containers_on_a_user_network(user: User, image: str, connector: str) -> None:
    """The rootless namespace connected by pasta, or by slirp4netns where pasta is missing (or asked)."""
    if shutil.which(connector) is None:
        pytest.skip(f"needs {connector}")
    user.extra_env = {"STRATA_ROOTLESS_NETWORK": connector}
    try:
        _two_containers(user, image, connector)
    finally:
        user.extra_env = {}


def _two_containers(user: User, image: str, connector: str) -> None:
    tag = uuid.uuid4().hex[:6]
    net, a, b = f"un{tag}", f"ua{tag}", f"ub{tag}"
    port = free_port()
    user.strata("network", "create", net)
    try:
        user.strata("run", "-d", "--network", net, "--name", a, "-p", f"127.0.0.1:{port}:80", image,
                    "httpd", "-f", "-p", "80", "-h", "/var/www")  # fmt: skip
        user.strata("run", "-d", "--network", net, "--name", b, image, "sleep", "300")
        assert http_get(port) == "hello from a rootless container\n"  # the host's loopback, into the namespace
        a_ip = user.strata("inspect", "-f", f"{{{{.NetworkSettings.Networks.{net}.IPAddress}}}}", a).stdout.strip()
        subnet = json.loads(user.strata("network", "inspect", net).stdout)[0]["IPAM"]["Config"][0]["Subnet"]
        import ipaddress

        assert ipaddress.ip_address(a_ip) in ipaddress.ip_network(subnet)
        by_name = _exec_until(user, b, "wget", "-qO-", f"http://{a}/")  # aardvark-dns answers for a's name
        by_ip = _exec_until(user, b, "wget", "-qO-", f"http://{a_ip}/")
        assert by_name == by_ip == "hello from a rootless container\n"
        pid = int((_store(user) / "networks" / "rootless" / "pasta.pid").read_text())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()  # pasta is passt's binary (passt.avx2)
        assert comm.startswith("slirp4netns" if connector == "slirp4netns" else ("pasta", "passt")), comm
        members = json.loads(user.strata("network", "inspect", net).stdout)[0]["Containers"]
        assert sorted(m["Name"] for m in members.values()) == sorted([a, b])
        assert f"127.0.0.1:{port}->80/tcp" in user.strata("ps", "--filter", f"name={a}").stdout
        done = user.strata("network", "rm", net, check=False)
        assert done.returncode == 1 and "has active endpoints" in done.stderr
    finally:
        user.strata("rm", "-f", a, b, check=False)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    assert user.strata("network", "rm", net).stdout == f"{net}\n"
    _assert_nothing_left(user)


def _assert_nothing_left(user: User) -> None:
    deadline = time.monotonic() + 60
    while _user_processes(user) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _user_processes(user) == []
    mounts = user.strata("unshare", "cat", "/proc/self/mounts").stdout
    assert str(_store(user)) not in mounts  # no namespace file (the rootless one, a container's) is mounted
    assert list((_store(user) / "netns").iterdir()) == []


def test_connect_and_disconnect_a_running_container(user: User, image: str) -> None:
    tag = uuid.uuid4().hex[:6]
    one, two, c = f"uc1{tag}", f"uc2{tag}", f"ucc{tag}"
    user.strata("network", "create", one)
    user.strata("network", "create", two)
    try:
        user.strata("run", "-d", "--network", one, "--name", c, image, "sleep", "300")
        assert "eth1" not in user.strata("exec", c, "ip", "-o", "link").stdout
        assert user.strata("network", "connect", two, c).stdout == ""
        links = user.strata("exec", c, "ip", "-o", "-4", "addr").stdout
        two_ip = user.strata("inspect", "-f", f"{{{{.NetworkSettings.Networks.{two}.IPAddress}}}}", c).stdout.strip()
        assert "eth1" in links and two_ip in links
        members = json.loads(user.strata("network", "inspect", two).stdout)[0]["Containers"]
        assert [m["Name"] for m in members.values()] == [c]
        assert user.strata("network", "disconnect", two, c).stdout == ""
        assert "eth1" not in user.strata("exec", c, "ip", "-o", "link").stdout
        assert json.loads(user.strata("network", "inspect", two).stdout)[0]["Containers"] == {}
    finally:
        user.strata("rm", "-f", c, check=False)
        user.strata("network", "rm", one, two, check=False)
    _assert_nothing_left(user)


def test_a_default_network_container_cannot_be_connected(user: User, image: str) -> None:
    tag = uuid.uuid4().hex[:6]
    net, c = f"ud{tag}", f"udc{tag}"
    user.strata("network", "create", net)
    try:
        user.strata("run", "-d", "--name", c, image, "sleep", "300")
        done = user.strata("network", "connect", net, c, check=False)
        assert (done.returncode, done.stderr) == (1, 'Error: "pasta" is not supported: invalid network mode\n')
        done = user.strata("network", "disconnect", "bridge", c, check=False)  # Podman's words for both
        assert (done.returncode, done.stderr) == (1, 'Error: "pasta" is not supported: invalid network mode\n')
        assert _get_inspect(user, c, "bridge")  # still on its pasta network
    finally:
        user.strata("rm", "-f", c, check=False)
        user.strata("network", "rm", net, check=False)


def _get_inspect(user: User, c: str, net: str) -> str:
    return user.strata("inspect", "-f", f"{{{{.NetworkSettings.Networks.{net}.IPAddress}}}}", c).stdout.strip()


def test_the_rootless_namespace_cannot_touch_the_host(user: User, image: str) -> None:
    """The bridge, veths and iptables rules are in the rootless namespace only; root of the user's namespace
    can change neither the host's interfaces nor its firewall."""
    tag = uuid.uuid4().hex[:6]
    net, c = f"uf{tag}", f"ufc{tag}"
    subnet = f"10.{200 + int(tag[:2], 16) % 50}.{int(tag[2:4], 16)}.0/24"  # one no other engine here uses
    user.strata("network", "create", "--subnet", subnet, net)
    try:
        user.strata("run", "-d", "--network", net, "--name", c, "-p", f"127.0.0.1:{free_port()}:80", image,
                    "sleep", "300")  # fmt: skip
        doc = json.loads(user.strata("network", "inspect", net).stdout)[0]
        assert doc["IPAM"]["Config"][0]["Subnet"] == subnet
        rootless_ns = str(_store(user) / "networks" / "rootless" / "netns")
        inside = user.strata("unshare", "nsenter", f"--net={rootless_ns}", "ip", "-o", "-4", "addr").stdout
        gateway = subnet.replace(".0/24", ".1/24")
        bridge = next(line.split()[1] for line in inside.splitlines() if f" {gateway} " in line)
        host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        assert f" {bridge}:" not in host_links and f" {bridge}@" not in host_links
        nat_inside = user.strata("unshare", "nsenter", f"--net={rootless_ns}", "iptables-save", "-t", "nat").stdout
        assert subnet in nat_inside
        host_nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True, check=True).stdout
        assert subnet not in host_nat
        dummy = f"strl{tag}"
        added = user.strata("unshare", "ip", "link", "add", dummy, "type", "veth", "peer", "name", f"{dummy}p",
                            check=False)  # fmt: skip
        assert added.returncode != 0 and "Operation not permitted" in added.stderr
        chain = user.strata("unshare", "iptables", "-t", "nat", "-N", f"STRL{tag}", check=False)
        assert chain.returncode != 0
        host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        assert dummy not in host_links
        host_chains = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True, check=True)
        assert f"STRL{tag}" not in host_chains.stdout
    finally:
        user.strata("rm", "-f", c, check=False)
        user.strata("network", "rm", net, check=False)
    _assert_nothing_left(user)


def test_rm_run_restart_and_keep_id_on_a_user_network(user: User, image: str) -> None:
    """A foreground ``--rm`` run publishes and cleans up; ``restart`` publishes again (a new forwarder on the
    freed port); a keep-id container (its network namespace inside its own user namespace) is on the
    network too, reached by name."""
    tag = uuid.uuid4().hex[:6]
    net, web, kid = f"ur{tag}", f"urw{tag}", f"urk{tag}"
    user.strata("network", "create", net)
    try:
        port = free_port()
        # it ends when told (a fixed few seconds of httpd could be over before a loaded machine got to ask)
        proc = user.spawn("run", "--rm", "--network", net, "--name", f"urf{tag}", "-p", f"127.0.0.1:{port}:80",
                          image, "sh", "-c", "trap 'exit 143' TERM; httpd -p 80 -h /var/www; until [ -e /tmp/done ]; do sleep 0.1; done")  # fmt: skip
        assert http_get(port) == "hello from a rootless container\n"
        user.strata("exec", f"urf{tag}", "touch", "/tmp/done")
        assert proc.wait(timeout=60) == 0
        assert user.strata("ps", "-aq").stdout == ""
        _assert_nothing_left(user)
        user.strata("run", "-d", "--network", net, "--name", web, "-p", f"127.0.0.1:{port}:80", image,
                    "httpd", "-f", "-p", "80", "-h", "/var/www")  # fmt: skip
        assert user.strata("restart", "-t", "1", web).stdout == f"{web}\n"
        assert http_get(port) == "hello from a rootless container\n"
        user.strata("run", "-d", "--network", net, "--name", kid, "--userns", "keep-id", image, "sleep", "300")
        assert user.strata("exec", kid, "id", "-u").stdout == f"{user.uid}\n"
        assert _exec_until(user, kid, "wget", "-qO-", f"http://{web}/") == "hello from a rootless container\n"
    finally:
        user.strata("rm", "-f", web, kid, check=False)
        user.strata("network", "rm", net, check=False)
    _assert_nothing_left(user)


def test_host_routes_do_not_block_a_rootless_network(user: User, image: str) -> None:
    """The subnet check looks at the rootless namespace's routes: a host interface's subnet (another
    engine's bridge, here a veth) does not stop the rootless bridge, which lives elsewhere."""
    tag = uuid.uuid4().hex[:6]
    dummy, net = f"strl{tag}", f"uh{tag}"
    subprocess.run(["ip", "link", "add", dummy, "type", "veth", "peer", "name", f"{dummy}p"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "10.213.77.1/24", "dev", dummy], check=True)
        subprocess.run(["ip", "link", "set", dummy, "up"], check=True)
        user.strata("network", "create", "--subnet", "10.213.77.0/24", net)
        done = user.strata("run", "--rm", "--network", net, image, "ip", "-o", "-4", "addr", "show", "eth0")
        assert " inet 10.213.77.2/24 " in done.stdout
    finally:
        subprocess.run(["ip", "link", "del", dummy], check=False)
        user.strata("network", "rm", net, check=False)
    _assert_nothing_left(user)



def test_a_killed_pasta_is_replaced_and_running_containers_stay(user: User, image: str) -> None:
    """The rootless namespace outlives its pasta: the next start connects it again, the containers on it
    keep their addresses and names."""
    import os
    import signal

    tag = uuid.uuid4().hex[:6]
    net, a, b = f"uk{tag}", f"uka{tag}", f"ukb{tag}"
    port = free_port()
    user.strata("network", "create", net)
    try:
        user.strata("run", "-d", "--network", net, "--name", a, "-p", f"127.0.0.1:{port}:80", image,
                    "httpd", "-f", "-p", "80", "-h", "/var/www")  # fmt: skip
        pid_file = _store(user) / "networks" / "rootless" / "pasta.pid"
        old = int(pid_file.read_text())
        os.kill(old, signal.SIGKILL)
        user.strata("run", "-d", "--network", net, "--name", b, image, "sleep", "300")
        assert int(pid_file.read_text()) != old
        assert _exec_until(user, b, "wget", "-qO-", f"http://{a}/") == "hello from a rootless container\n"
        assert http_get(port) == "hello from a rootless container\n"
    finally:
        user.strata("rm", "-f", a, b, check=False)
        user.strata("network", "rm", net, check=False)
    _assert_nothing_left(user)
