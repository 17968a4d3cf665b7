"""Containers on networks (netavark): published ports, user networks with names, container:NAME, the
taken-port error, cleanup after run/rm cycles and after a killed monitor, network commands.

Everything stays on this host: published ports are reached on 127.0.0.1, containers talk only to
each other on bridges these tests create (subnets from a private config file)."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_helpers import Strata, cleanup, runtime_missing

from peers import BUSYBOX_APPLETS, busybox_binary, busybox_rootfs_tar

pytestmark = pytest.mark.runtime

APPLETS = (*BUSYBOX_APPLETS, "httpd", "ip", "nslookup", "hostname")
PAGE = "hello from a container\n"


@pytest.fixture(scope="module")
def web_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = runtime_missing()
    if reason:
        pytest.skip(reason)
    if not os.access("/usr/lib/podman/netavark", os.X_OK):
        pytest.skip("netavark is not installed")
    return busybox_rootfs_tar(tmp_path_factory.mktemp("web") / "web.tar", applets=APPLETS)


@pytest.fixture
def net(tmp_path: Path, web_tar: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Strata]:
    """A store whose default bridge has a subnet of its own, with ``web:1`` (busybox with httpd)."""
    octet = secrets.randbelow(200) + 20
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"bip": f"10.213.{octet}.1/24",
                                  "default-address-pools": [{"base": f"10.214.{octet}.0/24", "size": 26}]}))
    monkeypatch.setenv("STRATA_CONFIG", str(config))
    s = Strata(tmp_path / "root")
    s("import", "-c", 'CMD ["/bin/sh"]', str(web_tar), "web:1")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text(PAGE)
    yield s
    cleanup(s)
    for name in s("network", "ls", "-q", "--filter", "type=custom", check=False).stdout.split():
        s("network", "rm", name, check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _httpd(s: Strata, *args: str) -> str:
    www = s.root.parent / "www"
    return s("run", "-d", *args, "-v", f"{www}:/www", "web:1", "httpd", "-f", "-p", "80", "-h", "/www").stdout.strip()


def _host_state(s: Strata) -> tuple[list[str], list[str], list[str]]:
    """Links, the firewall rules naming this store's subnets or containers, and namespace files, once
    a --rm container's teardown (finished in the background, under the networks lock) is done."""
    import fcntl

    lock = s.root / "networks" / "lock"
    if lock.exists():
        with open(lock) as f:
            fcntl.flock(f, fcntl.LOCK_EX)
    nets = [json.loads(p.read_text()) for p in (s.root / "networks").glob("*.json")]
    bridges = {n["interface"] for n in nets if n.get("interface")}  # this store's; other tests run too
    links = sorted(line.split()[1].split("@")[0].rstrip(":") for line in subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout.splitlines()
        if line.split()[1].split("@")[0].rstrip(":") in bridges or any(f" master {b} " in line for b in bridges))
    cids = set(s("ps", "-aq", "--no-trunc").stdout.split())
    subnets = [n["subnet"] for n in nets]
    keys = [n.rsplit(".", 1)[0] + "." for n in subnets if n] + list(cids)
    rules = sorted(line for line in subprocess.run(["iptables-save"], capture_output=True, text=True,
                                                   check=True).stdout.splitlines()
                   if any(k and k in line for k in keys) or ("dnat name" in line and str(s.root) in line))
    netns = sorted(p.name for p in (s.root / "netns").glob("*")) if (s.root / "netns").exists() else []
    return links, rules, netns


def test_web_server_on_published_loopback_and_ephemeral_ports(net: Strata) -> None:
    port = _free_port()
    cid = _httpd(net, "--name", "web", "-p", f"127.0.0.1:{port}:80", "-p", "80")
    assert _get(f"http://127.0.0.1:{port}/") == PAGE
    lines = net("port", "web").stdout.splitlines()
    ephemeral = next(int(x.rsplit(":", 1)[1]) for x in lines if x.startswith("80/tcp -> 0.0.0.0:"))
    assert f"80/tcp -> 127.0.0.1:{port}" in lines
    assert _get(f"http://127.0.0.1:{ephemeral}/") == PAGE
    assert net("port", "web", "80").stdout.splitlines() == [f"127.0.0.1:{port}", f"0.0.0.0:{ephemeral}"]
    ps = net("ps", "--format", "{{.Ports}}").stdout.strip()
    assert ps == f"0.0.0.0:{ephemeral}->80/tcp, 127.0.0.1:{port}->80/tcp"
    settings = json.loads(net("inspect", "-f", "{{json .NetworkSettings}}", "web").stdout)
    assert settings["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)},
                                            {"HostIp": "0.0.0.0", "HostPort": str(ephemeral)}]}
    ip, gw = settings["IPAddress"], settings["Gateway"]
    assert re.fullmatch(r"10\.213\.\d+\.2", ip) and gw.endswith(".1") and settings["IPPrefixLen"] == 24
    assert settings["MacAddress"] == "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))
    assert settings["Networks"]["bridge"]["IPAddress"] == ip
    out = net("exec", "web", "sh", "-c", "ip -4 -o addr show eth0; ip route; cat /etc/hosts").stdout
    assert f"inet {ip}/24" in out and f"default via {gw} dev eth0" in out
    assert out.rstrip().endswith(f"{ip}\t{cid[:12]}")
    net("stop", "-t", "1", "web")
    assert net("ps", "-a", "--format", "{{.Ports}}").stdout.strip() == ""
    stopped = json.loads(net("inspect", "-f", "{{json .NetworkSettings}}", "web").stdout)
    assert stopped["Ports"] == {} and stopped["IPAddress"] == "" and stopped["Networks"]["bridge"]["IPAddress"] == ""


def test_taken_port_is_dockers_error_and_leaves_nothing(net: Strata) -> None:
    port = _free_port()
    _httpd(net, "--name", "web", "-p", f"127.0.0.1:{port}:80")
    before = _host_state(net)
    res = net("run", "-d", "--name", "second", "-p", f"127.0.0.1:{port}:80", "web:1", "sleep", "60", check=False)
    assert res.returncode == 125
    assert re.fullmatch(r"Error: driver failed programming external connectivity on endpoint second "
                        rf"\([0-9a-f]{{64}}\): Bind for 127\.0\.0\.1:{port} failed: port is already allocated\n",
                        res.stderr), res.stderr
    assert net("ps", "-a", "--filter", "name=second", "--format", "{{.Status}}").stdout.strip() == "Created"
    settings = json.loads(net("inspect", "-f", "{{json .NetworkSettings}}", "second").stdout)
    assert settings["IPAddress"] == "" and settings["Ports"] == {}
    after = _host_state(net)
    assert after[0] == before[0] and after[2] == before[2]
    assert [r for r in after[1] if r not in before[1]] == []
    assert _get(f"http://127.0.0.1:{port}/") == PAGE


def test_user_network_names_aliases_and_rm_in_use(net: Strata) -> None:
    net_id = net("network", "create", "appnet").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", net_id)
    _httpd(net, "--name", "web", "--network", "appnet", "--network-alias", "www")
    out = net("run", "--rm", "--network", "appnet", "web:1", "sh", "-c",
              "wget -qO- http://web/ && wget -qO- http://www/ && cat /etc/resolv.conf").stdout
    assert out.startswith(PAGE + PAGE)
    assert "options ndots:0" in out
    res = net("network", "rm", "appnet", check=False)
    assert (res.returncode, res.stderr) == (
        1, f"Error: error while removing network: network appnet id {net_id} has active endpoints\n")
    doc = json.loads(net("network", "inspect", "appnet").stdout)[0]
    assert [m["Name"] for m in doc["Containers"].values()] == ["web"]
    aliases = json.loads(net("inspect", "-f", "{{json .NetworkSettings.Networks.appnet.Aliases}}", "web").stdout)
    cid = net("inspect", "-f", "{{.Id}}", "web").stdout.strip()
    assert aliases == ["www", cid[:12]]
    net("rm", "-f", "web")
    assert net("network", "rm", "appnet").stdout == "appnet\n"
    assert net("network", "ls", "--format", "{{.Name}}").stdout == "bridge\nhost\nnone\n"


def test_container_network_mode_shares_the_namespace(net: Strata) -> None:
    _httpd(net, "--name", "web")
    web_ip = net("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web").stdout.strip()
    out = net("run", "--rm", "--network", "container:web", "web:1", "sh", "-c",
              "wget -qO- http://127.0.0.1/ && ip -4 -o addr show eth0").stdout
    assert out.startswith(PAGE) and f"inet {web_ip}/" in out
    res = net("run", "--rm", "--network", "container:web", "-p", "81:80", "web:1", "true", check=False)
    assert (res.returncode, res.stderr) == (
        125, "Error: conflicting options: port publishing and the container type network mode\n")


def test_run_rm_cycles_leave_the_host_as_it_was(net: Strata) -> None:
    port = _free_port()
    net("run", "--rm", "-p", f"127.0.0.1:{port}:80", "web:1", "true")  # netavark's shared chains exist now
    before = _host_state(net)
    for i in range(100):  # the issue: 100 run/rm cycles with -p
        if i % 3 == 0:
            cid = net("run", "-d", "-p", f"127.0.0.1:{port}:80", "web:1", "sleep", "30").stdout.strip()
            net("rm", "-f", cid)
        else:
            net("run", "--rm", "-p", f"127.0.0.1:{port}:80", "-p", "90", "web:1", "true")
    assert _host_state(net) == before


def test_killed_monitor_is_cleaned_up_by_the_next_command(net: Strata) -> None:
    port = _free_port()
    # its monitor must still be there to be killed (after an exit it cleans up itself): the container runs
    # until the test ends it (a container of a few seconds could end first on a loaded machine)
    cid = net("run", "-d", "-p", f"127.0.0.1:{port}:80", "web:1", "sleep", "1000").stdout.strip()
    monitor, pid = _record(net, cid)["monitor_pid"], _record(net, cid)["pid"]
    assert isinstance(monitor, int) and isinstance(pid, int)
    _kill_watchers(monitor)
    assert (net.root / "netns" / cid).exists()
    os.kill(pid, signal.SIGKILL)
    _until_gone(pid)
    assert (net.root / "netns" / cid).exists()  # nobody watched it exit
    assert "Exited (255)" in net("ps", "-a", "--format", "{{.Status}}").stdout
    assert not (net.root / "netns" / cid).exists()
    assert not [r for r in _host_state(net)[1] if cid in r]
    assert net("run", "--rm", "-p", f"127.0.0.1:{port}:80", "web:1", "true").returncode == 0
    # the next run itself gives back what a dead monitor's container held (no ps in between)
    cid = net("run", "-d", "-p", f"127.0.0.1:{port}:80", "web:1", "sleep", "1000").stdout.strip()
    monitor, pid = _record(net, cid)["monitor_pid"], _record(net, cid)["pid"]
    assert isinstance(monitor, int) and isinstance(pid, int)
    _kill_watchers(monitor)
    os.kill(pid, signal.SIGKILL)
    _until_gone(pid)
    net("run", "--rm", "-p", f"127.0.0.1:{port}:80", "web:1", "true")
    assert not (net.root / "netns" / cid).exists()


def _until_gone(pid: int, timeout: float = 60.0) -> None:
    """Until the container's process has exited (gone, or a zombie nobody reaps)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        assert time.monotonic() < deadline, f"pid {pid} still runs"
        time.sleep(0.1)


def _kill_watchers(monitor: int) -> None:
    """SIGKILL a detached container's monitor and the keeper above it (which would take over)."""
    with open(f"/proc/{monitor}/stat") as f:
        keeper = int(f.read().rsplit(")", 1)[1].split()[1])
    os.kill(keeper, signal.SIGKILL)
    os.kill(monitor, signal.SIGKILL)


def _record(s: Strata, cid: str) -> dict[str, object]:
    import sqlite3

    db = sqlite3.connect(str(s.root / "containers.db"))
    try:
        (data,) = db.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()
    finally:
        db.close()
    return dict(json.loads(data))


def test_hosts_resolv_and_identity_flags(net: Strata) -> None:
    out = net("run", "--rm", "-h", "box", "--domainname", "example.test", "--add-host", "db:10.1.2.3",
              "--dns", "10.9.9.9", "--dns-search", "corp.test", "--dns-option", "ndots:2",
              "--mac-address", "92:d0:c6:0a:29:33", "web:1", "sh", "-c",
              "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; ip -o link show eth0; hostname").stdout
    hosts, resolv, rest = out.split("---\n")
    assert hosts.endswith("ff02::2\tip6-allrouters\n10.1.2.3\tdb\n" + hosts.splitlines()[-1] + "\n")
    assert re.fullmatch(r"10\.213\.\d+\.2\tbox\.example\.test box", hosts.splitlines()[-1])
    assert resolv == "search corp.test\nnameserver 10.9.9.9\noptions ndots:2\n"
    assert "link/ether 92:d0:c6:0a:29:33" in rest and rest.endswith("box\n")
    res = net("run", "--rm", "--network", "none", "web:1", "ip", "-o", "link").stdout
    assert "eth0" not in res and "lo" in res


def test_docker_resolv_conf_rules() -> None:
    from strata.container.network.files import resolv_conf

    host = "search lan\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0\n"
    assert resolv_conf(host, [], [], []) == "search lan\noptions edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert resolv_conf("nameserver 10.0.0.2\nnameserver fe80::1\n", [], [], []) == "nameserver 10.0.0.2\n"
    assert resolv_conf(host, [], [], [], embedded="10.1.0.1") == \
        "search lan\nnameserver 10.1.0.1\noptions edns0 ndots:0\n"


def test_publish_specs_and_errors() -> None:
    from strata.container.network.ports import Mapping, displayable_ports, parse_publish
    from strata.errors import StrataError

    assert parse_publish("127.0.0.1:8080:80") == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert parse_publish("8000-8001:80-81/udp") == {"80/udp": [{"HostIp": "", "HostPort": "8000"}],
                                                    "81/udp": [{"HostIp": "", "HostPort": "8001"}]}
    assert parse_publish("9000-9010:80") == {"80/tcp": [{"HostIp": "", "HostPort": "9000-9010"}]}
    for spec, message in (("abc", "Invalid containerPort: abc"), ("x:80", "Invalid hostPort: x"),
                          ("1.2.3:80:80", "Invalid ip address: 1.2.3"), ("80/icmp", "Invalid proto: icmp"),
                          ("8000-8002:80-81", "Invalid ranges specified for container and host Ports: 80-81 "
                                              "and 8000-8002")):
        with pytest.raises(StrataError) as err:
            parse_publish(spec)
        assert (str(err.value), err.value.exit_code) == (message, 125)
    maps = [Mapping("", 8080, 80), Mapping("", 8081, 81), Mapping("", 443, 443), Mapping("127.0.0.1", 53, 53, "udp")]
    assert displayable_ports({"22/tcp": {}}, maps) == \
        "22/tcp, 127.0.0.1:53->53/udp, 0.0.0.0:443->443/tcp, 0.0.0.0:8080->80/tcp, 0.0.0.0:8081->81/tcp"


def test_flag_and_network_errors(net: Strata) -> None:
    cases = [
        (["--network", "nosuch"], 125, "Error: network nosuch not found\n"),
        (["--network", "bridge", "--ip", "10.213.0.9"], 125,
         "Error: user specified IP address is supported on user defined networks only\n"),
        (["--network", "bridge", "--network-alias", "x"], 125,
         "Error: network-scoped aliases are only supported for user-defined networks\n"),
        (["-p", "abc"], 125, "Error: Invalid containerPort: abc\n"),
        (["--add-host", "nohost"], 125,
         'Error: invalid argument "nohost" for "--add-host" flag: bad format for add-host: "nohost"\n'
         "See 'strata run --help'.\n"),
        (["--dns", "x"], 125, "Error: invalid argument \"x\" for \"--dns\" flag: x is not an ip address\n"
                              "See 'strata run --help'.\n"),
    ]
    for flags, code, err in cases:
        res = net("run", "--rm", *flags, "web:1", "true", check=False)
        assert (res.returncode, res.stderr) == (code, err), flags
    assert net("run", "--rm", "--ip", "10.213.0.9", "--network-alias", "x", "web:1", "true").returncode == 0
    res = net("network", "rm", "bridge", check=False)
    assert (res.returncode, res.stderr) == (1, "Error: bridge is a pre-defined network and cannot be removed\n")
    res = net("network", "inspect", "nosuch", check=False)
    assert (res.returncode, res.stderr) == (1, "Error: No such network: nosuch\n")


def test_image_without_passwd_runs_as_root(net: Strata, tmp_path: Path) -> None:
    tar = tmp_path / "scratch.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox_binary(), arcname="busybox")
    net("import", "-c", 'CMD ["/busybox", "id", "-u"]', str(tar), "scratch:1")
    res = net("run", "--rm", "--network", "none", "scratch:1")
    assert res.stdout == "0\n"
    res = net("run", "--rm", "--network", "none", "-u", "root", "scratch:1", check=False)
    assert res.returncode == 125 and "unable to find user root" in res.stderr


def test_publish_all_exposed_ports_and_ranges(net: Strata, tmp_path: Path) -> None:
    net("run", "--name", "img", "web:1", "true")
    net("commit", "-c", "EXPOSE 80 8125/udp", "img", "exposing:1")
    cid = net("run", "-d", "-P", "--expose", "7000-7001", "-p", "127.0.0.1::9000", "exposing:1", "sleep", "1000").stdout
    ports = json.loads(net("inspect", "-f", "{{json .NetworkSettings.Ports}}", cid.strip()).stdout)
    assert sorted(ports) == ["7000/tcp", "7001/tcp", "80/tcp", "8125/udp", "9000/tcp"]
    assert all(len(v) == 1 and int(v[0]["HostPort"]) > 1024 for v in ports.values())
    assert ports["9000/tcp"][0]["HostIp"] == "127.0.0.1" and ports["80/tcp"][0]["HostIp"] == "0.0.0.0"
    assert len({v[0]["HostPort"] for k, v in ports.items() if k.endswith("/tcp")}) == 4
    first = _free_port()
    while True:  # two free neighbours for the range
        second = first + 1
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", first))
                b.bind(("127.0.0.1", second))
            break
        except OSError:
            first = _free_port()
    out = net("run", "-d", "-p", f"127.0.0.1:{first}-{second}:80-81", "web:1", "sleep", "1000").stdout.strip()
    assert net("port", out).stdout.splitlines() == [f"80/tcp -> 127.0.0.1:{first}", f"81/tcp -> 127.0.0.1:{second}"]
    column = net("ps", "--filter", f"id={out}", "--format", "{{.Ports}}").stdout.strip()
    assert column == f"127.0.0.1:{first}->80/tcp, 127.0.0.1:{second}->81/tcp"


def test_parallel_runs_get_distinct_addresses_and_ports(net: Strata) -> None:
    procs = [subprocess.Popen(net.argv("run", "-d", "-p", "127.0.0.1::80", "web:1", "sleep", "1000"), env=net.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        ids.append(out.strip())
    docs = [json.loads(net("inspect", "-f", "{{json .NetworkSettings}}", cid).stdout) for cid in ids]
    ips = {d["IPAddress"] for d in docs}
    ports = {d["Ports"]["80/tcp"][0]["HostPort"] for d in docs}
    assert len(ips) == 6 and len(ports) == 6 and "" not in ips


def test_connect_and_disconnect_a_running_container(net: Strata) -> None:
    net("network", "create", "--internal", "backnet")
    _httpd(net, "--name", "web")
    net("network", "connect", "--alias", "api", "backnet", "web")
    out = net("run", "--rm", "--network", "backnet", "web:1", "sh", "-c",
              "wget -qO- http://api/ && ip route").stdout
    assert out.startswith(PAGE) and "default" not in out  # internal: no way out
    addrs = net("exec", "web", "ip", "-4", "-o", "addr").stdout
    assert " eth0 " in addrs and " eth1 " in addrs
    net("network", "disconnect", "backnet", "web")
    assert " eth1 " not in net("exec", "web", "ip", "-4", "-o", "addr").stdout
    assert "backnet" not in json.loads(net("inspect", "-f", "{{json .NetworkSettings.Networks}}", "web").stdout)


def test_default_bridge_moves_off_a_subnet_the_host_took(tmp_path: Path, web_tar: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    octet = secrets.randbelow(200) + 20
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"default-address-pools": [{"base": f"10.221.{octet}.0/24", "size": 26}]}))
    monkeypatch.setenv("STRATA_CONFIG", str(config))
    s = Strata(tmp_path / "root")
    s("import", str(web_tar), "web:1")
    subnet = s("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge").stdout.strip()
    assert subnet == f"10.221.{octet}.0/26"
    dummy = f"stdum{secrets.token_hex(3)}"
    subprocess.run(["ip", "link", "add", dummy, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"10.221.{octet}.10/26", "dev", dummy], check=True)
        subprocess.run(["ip", "link", "set", dummy, "up"], check=True)
        out = s("run", "--rm", "web:1", "ip", "-4", "-o", "addr", "show", "eth0").stdout
        assert f"inet 10.221.{octet}.66/26" in out
        moved = s("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge").stdout.strip()
        assert moved == f"10.221.{octet}.64/26"
    finally:
        subprocess.run(["ip", "link", "del", dummy], check=False)
        cleanup(s)


def test_disconnect_and_reconnect_the_default_bridge_moves_published_ports(net: Strata) -> None:
    port = _free_port()
    _httpd(net, "--name", "web", "-p", f"127.0.0.1:{port}:80")
    assert _get(f"http://127.0.0.1:{port}/") == PAGE
    net("network", "disconnect", "bridge", "web")
    assert net("ps", "--format", "[{{.Ports}}]").stdout == "[]\n"
    assert net("inspect", "-f", "{{json .NetworkSettings.Networks}}", "web").stdout.strip() == "{}"
    with pytest.raises(OSError):
        _get(f"http://127.0.0.1:{port}/", timeout=0)
    net("network", "connect", "bridge", "web")
    assert net("ps", "--format", "{{.Ports}}").stdout == f"127.0.0.1:{port}->80/tcp\n"
    assert _get(f"http://127.0.0.1:{port}/") == PAGE
    res = net("network", "connect", "bridge", "web", check=False)
    assert (res.returncode, res.stderr) == (1, "Error: endpoint with name web already exists in network bridge\n")


def test_outbound_traffic_is_masqueraded(net: Strata, tmp_path: Path) -> None:
    """A peer namespace this test makes stands in for "outside": a container reaches it through the
    host, and the peer sees the host's address, not the container's (outbound NAT)."""
    tag = secrets.token_hex(3)
    ns, host_if, peer_if = f"stout{tag}", f"sto{tag}h", f"sto{tag}p"
    octet = secrets.randbelow(200) + 20
    host_ip, peer_ip = f"10.222.{octet}.1", f"10.222.{octet}.2"

    def sh(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True)

    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        sh("ip", "link", "set", peer_if, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "-n", ns, "addr", "add", f"{peer_ip}/30", "dev", peer_if)
        sh("ip", "-n", ns, "link", "set", peer_if, "up")
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c",
             "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
             f"s.bind(('{peer_ip}', 8099)); s.listen(); c, a = s.accept(); c.sendall(a[0].encode()); c.close()"])
        try:
            out = ""
            for _ in range(50):
                res = net("run", "--rm", "web:1", "nc", peer_ip, "8099", check=False)
                out = res.stdout
                if out:
                    break
                time.sleep(0.1)
            assert out == host_ip
        finally:
            server.kill()
            server.wait()
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def test_a_release_that_died_is_finished_by_the_next_run(net: Strata) -> None:
    """A --rm container's teardown runs in a detached child; if that child dies, its note lets the
    next run finish the job. Made deterministic here: the record forgets the namespace, the note
    keeps it, as the child would have left them."""
    from strata.container.network.endpoints import forget
    from strata.container.records import ContainerStore, container_dir

    port = _free_port()
    net("run", "--rm", "web:1", "true")  # netavark's shared chains exist now
    before = _host_state(net)
    cid = net("run", "-d", "-p", f"127.0.0.1:{port}:80", "web:1", "sleep", "1000").stdout.strip()
    with ContainerStore(net.root) as store:
        c = store.get(cid)
        options = json.loads((container_dir(net.root, cid) / "netavark.json").read_text())
        notes = net.root / "networks" / "releasing"
        notes.mkdir(exist_ok=True)
        (notes / f"{cid}.json").write_text(json.dumps({"netns": c.netns, "options": options}))
        forget(store, c)
    net("rm", "-f", cid)
    assert any(str(port) in r for r in _host_state(net)[1])  # left behind, as by a killed child
    net("run", "--rm", "web:1", "true")
    assert _host_state(net) == before  # (waits for this run's own background teardown)
    assert not list(notes.iterdir())
