"""Namespaces, devices, groups, sysctls, /dev/shm, block I/O weight, the OOM killer and the cgroup
path (``--pid``, ``--ipc``, ``--shm-size``, ``--uts``, ``--userns``, ``--device``, ``--group-add``,
``--sysctl``, ``--blkio-weight``, ``--oom-kill-disable``): seen from inside containers run by runc,
Docker's errors up front (nothing half-created), and side by side with Docker 20.10."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess

import pytest
from container_helpers import Strata

from peers import Dockerd
from strata.container.isolation import check_sysctl, parse_device
from strata.container.resources import blkio_weight_supported, oom_kill_disable_supported

pytestmark = pytest.mark.runtime


def test_device_and_sysctl_parsers() -> None:
    assert parse_device("/dev/null") == {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null",
                                         "CgroupPermissions": "rwm"}
    assert parse_device("/dev/null:r") == {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null",
                                           "CgroupPermissions": "r"}
    assert parse_device("/dev/null:/dev/x:rw")["PathInContainer"] == "/dev/x"
    for bad, why in (("/dev/null:/x:rr", "bad mode specified: rr"), ("/dev/null:rel", "rel is not an absolute path"),
                     ("a:b:c:d", "bad format for path: a:b:c:d")):
        with pytest.raises(ValueError, match=re.escape(why)):
            parse_device(bad)
    assert check_sysctl("net.ipv4.ip_forward=1") == ("net.ipv4.ip_forward", "1")
    assert check_sysctl("kernel.shmmax=a=b") == ("kernel.shmmax", "a=b")
    for bad in ("kernel.hostname=x", "foo", "vm.swappiness=1"):
        with pytest.raises(ValueError, match="is not whitelisted"):
            check_sysctl(bad)


def _see(msg: str) -> str:
    return f"{msg}{'' if msg.startswith('invalid argument') else '.'}\nSee 'strata run --help'."


@pytest.mark.parametrize(("flags", "message"), [
    (["--sysctl", "kernel.foo=1"], _see('invalid argument "kernel.foo=1" for "--sysctl" flag: sysctl '
                                        "'kernel.foo=1' is not whitelisted")),
    (["--pid", "bogus"], _see("--pid: invalid PID mode")),
    (["--uts", "bogus"], _see("--uts: invalid UTS mode")),
    (["--userns", "bogus"], _see("--userns: invalid USER mode")),
    (["--ipc", "bogus"], "Invalid IPC mode: bogus"),
    (["--uts", "host", "-h", "foo"], "conflicting options: hostname and the UTS mode"),
    (["--pid", "container:nosuch"], "No such container: nosuch"),
    (["--ipc", "container:nosuch"], "No such container: nosuch"),
    (["--device", "/dev/null:/dev/x:xyz"], _see("bad mode specified: xyz")),
    (["--device", "/dev/null:rel"], _see("rel is not an absolute path")),
    (["--shm-size", "abc"], _see('invalid argument "abc" for "--shm-size" flag: invalid size: \'abc\'')),
    (["--shm-size", "-1"], _see('invalid argument "-1" for "--shm-size" flag: invalid size: \'-1\'')),
    (["--blkio-weight", "abc"], _see('invalid argument "abc" for "--blkio-weight" flag: strconv.ParseUint: '
                                     'parsing "abc": invalid syntax')),
])
def test_bad_flags_are_refused_up_front(strata: Strata, busybox_image: str, flags: list[str], message: str) -> None:
    res = strata("run", *flags, busybox_image, "true", check=False)
    assert (res.returncode, res.stderr) == (125, f"Error: {message}\n")
    assert strata("ps", "-aq").stdout == ""


def test_cgroup_is_strata_own_parent(strata: Strata, busybox_image: str) -> None:
    """Never nested under the calling shell's cgroup: /strata/<id>, as Docker's /docker/<id>."""
    out = strata("run", "--name", "cg", busybox_image, "cat", "/proc/self/cgroup").stdout
    cid = strata("inspect", "-f", "{{.Id}}", "cg").stdout.strip()
    lines = [line for line in out.splitlines() if line]
    assert lines and all(line.split(":", 2)[2] == f"/strata/{cid}" for line in lines), out


def test_namespace_modes(strata: Strata, busybox_image: str) -> None:
    run = lambda *a: strata("run", "--rm", *a).stdout  # noqa: E731
    own = int(run(busybox_image, "sh", "-c", "ls /proc | grep -c '^[0-9]'"))
    host = int(run("--pid", "host", busybox_image, "sh", "-c", "ls /proc | grep -c '^[0-9]'"))
    assert own <= 3 < host
    assert run("--uts", "host", busybox_image, "hostname").strip() == socket.gethostname()
    assert run("--userns", "host", busybox_image, "echo", "ok") == "ok\n"
    assert run("--sysctl", "kernel.shmmax=1000", busybox_image, "cat", "/proc/sys/kernel/shmmax") == "1000\n"
    assert run("--sysctl", "net.ipv4.ip_forward=1", busybox_image, "cat", "/proc/sys/net/ipv4/ip_forward") == "1\n"
    host_ipc = os.readlink("/proc/self/ns/ipc")
    assert run("--ipc", "host", busybox_image, "readlink", "/proc/self/ns/ipc").strip() == host_ipc
    assert run(busybox_image, "readlink", "/proc/self/ns/ipc").strip() != host_ipc


def _shm_kib(strata: Strata, image: str, *flags: str) -> str:
    return strata("run", "--rm", *flags, image, "sh", "-c", "df -k /dev/shm | tail -1").stdout.split()[1]


def test_shm_size(strata: Strata, busybox_image: str) -> None:
    assert _shm_kib(strata, busybox_image) == "65536"  # Docker's 64m
    assert _shm_kib(strata, busybox_image, "--shm-size", "128m") == "131072"
    none = strata("run", "--rm", "--ipc", "none", busybox_image, "sh", "-c", "grep -c ' /dev/shm ' /proc/mounts",
                  check=False)
    assert none.stdout.strip() == "0"
    strata("create", "--name", "shm", "--shm-size", "1g", busybox_image)
    assert strata("inspect", "-f", "{{.HostConfig.ShmSize}} {{.HostConfig.IpcMode}}", "shm").stdout == "1073741824 private\n"


def test_joining_another_containers_namespaces(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "donor", "--ipc", "shareable", "--shm-size", "32m", busybox_image, "sh", "-c",
           "echo shared > /dev/shm/x; sleep 1000")
    strata("run", "-d", "--name", "private", busybox_image, "sleep", "1000")
    try:
        ps = strata("run", "--rm", "--pid", "container:donor", busybox_image, "ps", "-o", "args").stdout
        assert "sleep 1000" in ps
        shm = strata("run", "--rm", "--ipc", "container:donor", busybox_image, "sh", "-c",
                     "cat /dev/shm/x; df -k /dev/shm | tail -1").stdout.split("\n")
        assert shm[0] == "shared" and shm[1].split()[1] == "32768"  # the donor's /dev/shm, its size
        ns = strata("run", "--rm", "--ipc", "container:donor", busybox_image, "readlink", "/proc/self/ns/ipc").stdout
        assert ns == strata("exec", "donor", "readlink", "/proc/self/ns/ipc").stdout
        res = strata("run", "--rm", "--ipc", "container:private", busybox_image, "true", check=False)
        pid = strata("inspect", "-f", "{{.Id}}", "private").stdout.strip()
        assert (res.returncode, res.stderr) == (125, f"Error: can't join IPC of container {pid}: non-shareable IPC "
                                                     "(hint: use IpcMode:shareable for the donor container)\n")
        strata("stop", "-t", "0", "donor")
        res = strata("run", "--rm", "--pid", "container:donor", busybox_image, "true", check=False)
        did = strata("inspect", "-f", "{{.Id}}", "donor").stdout.strip()
        assert (res.returncode, res.stderr) == (125, f"Error: Container {did} is not running\n")
        strata("rm", "-f", "donor")
        with open("/proc/mounts") as f:
            assert f"{did}/shm" not in f.read()  # its /dev/shm released with it
    finally:
        strata("rm", "-f", "donor", "private", check=False)


def test_devices_and_groups(strata: Strata, busybox_image: str) -> None:
    out = strata("run", "--rm", "--device", "/dev/null:/dev/mynull:rw", busybox_image, "sh", "-c",
                 "ls -l /dev/mynull; echo hi > /dev/mynull && echo ok").stdout
    assert re.match(r"crw-rw-rw- +1 root +root +1, +3 .* /dev/mynull\nok\n", out), out
    res = strata("run", "--rm", "--device", "/dev/nosuch-strata", busybox_image, "true", check=False)
    assert (res.returncode, res.stderr) == (127, 'Error: error gathering device information while adding custom '
                                                 'device "/dev/nosuch-strata": no such file or directory\n')
    assert strata("run", "--rm", "--group-add", "1234", "--group-add", "0", busybox_image,
                  "id", "-G").stdout.split() == ["0", "1234"]
    if os.path.exists("/dev/net/tun"):  # a directory: every node under it, moved under the container path
        out = strata("run", "--rm", "--device", "/dev/net:/dev/mynet", busybox_image, "ls", "/dev/mynet").stdout
        assert out == "tun\n"
    res = strata("run", "--rm", "--device", "/etc/passwd", busybox_image, "true", check=False)
    assert (res.returncode, res.stderr) == (125, 'Error: error gathering device information while adding custom '
                                                 'device "/etc/passwd": not a device node\n')
    res = strata("run", "--rm", "--group-add", "nosuchgroup", busybox_image, "true", check=False)
    assert (res.returncode, res.stderr) == (125, "Error: Unable to find group nosuchgroup: no matching entries in "
                                                 "group file\n")
    strata("create", "--name", "dev", "--device", "/dev/zero:/dev/z:r", "--group-add", "5", busybox_image)
    hc = json.loads(strata("inspect", "-f", "{{json .HostConfig}}", "dev").stdout)
    assert (hc["Devices"], hc["GroupAdd"]) == (
        [{"PathOnHost": "/dev/zero", "PathInContainer": "/dev/z", "CgroupPermissions": "r"}], ["5"])


def test_privileged_gets_the_host_devices(strata: Strata, busybox_image: str) -> None:
    """As Docker's (runc's HostDevices): every device node of the host's /dev but console (this host's
    Docker cannot run --privileged at all: its capabilities exceed the ones given to this machine)."""
    nodes = set()
    for entry in os.scandir("/dev"):
        mode = entry.stat(follow_symlinks=False).st_mode
        if entry.name != "console" and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
            nodes.add(entry.name)
    inside = set(strata("run", "--rm", "--privileged", busybox_image, "ls", "/dev").stdout.split())
    plain = set(strata("run", "--rm", busybox_image, "ls", "/dev").stdout.split())
    assert nodes <= inside and "console" not in inside
    assert not nodes <= plain


def test_blkio_weight_and_oom_kill_disable(strata: Strata, busybox_image: str) -> None:
    res = strata("run", "--rm", "--blkio-weight", "300", busybox_image, "true", check=False)
    if blkio_weight_supported():
        assert res.returncode == 0 and res.stderr == ""
        bad = strata("run", "--rm", "--blkio-weight", "5", busybox_image, "true", check=False)
        assert (bad.returncode, bad.stderr) == (125, "Error: Range of blkio weight is from 10 to 1000\n")
    else:  # Docker on this kernel: discarded, with its warning
        assert (res.returncode, res.stderr) == (0, "WARNING: Your kernel does not support Block I/O weight or the "
                                                   "cgroup is not mounted. Weight discarded.\n")
    if not oom_kill_disable_supported():
        pytest.skip("no memory.oom_control (cgroup v2): Docker discards --oom-kill-disable")
    res = strata("run", "--rm", "--oom-kill-disable", busybox_image, "true")
    assert res.stderr == ("WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' limit may "
                          "be dangerous.\nWARNING: OOM killer is disabled for the container, but no memory limit is "
                          "set, this can result in the system running out of resources.\n")
    out = strata("run", "--name", "oom", "-m", "32m", "--oom-kill-disable", busybox_image,
                 "cat", "/sys/fs/cgroup/memory/memory.oom_control").stdout
    assert "oom_kill_disable 1" in out
    hc = json.loads(strata("inspect", "-f", "{{json .HostConfig}}", "oom").stdout)
    assert (hc["OomKillDisable"], hc["Memory"], hc["MemorySwap"]) == (True, 32 << 20, 64 << 20)


def _error(res: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in res.stderr.strip().splitlines() if not line.startswith("time=")]  # Docker CLI noise
    text = re.sub(r"^(docker: )?(Error response from daemon: |Error: )?", "", "\n".join(lines))
    text = re.sub(r"\.?\nSee '(docker|strata) run --help'\.$", "", text)
    return re.sub(r"\b[0-9a-f]{64}\b", "<ID>", text).rstrip(".")


@pytest.mark.parametrize("flags", [
    ["--sysctl", "kernel.foo=1"], ["--sysctl", "foo"], ["--pid", "bogus"], ["--uts", "bogus"],
    ["--userns", "bogus"], ["--ipc", "bogus"], ["--uts", "host", "-h", "foo"], ["--pid", "container:nosuch"],
    ["--ipc", "container:nosuch"], ["--device", "/dev/null:/dev/x:xyz"], ["--device", "/dev/null:rel"],
    ["--device", "/dev/nosuch-strata"], ["--shm-size", "abc"], ["--blkio-weight", "abc"],
    ["--group-add", "nosuchgroup"], ["--log-driver", "bogus"], ["--log-opt", "foo=bar"],
    ["--log-opt", "max-size=abc"], ["--log-opt", "max-file=0"], ["--log-driver", "none", "--log-opt", "max-size=1k"],
    ["--pids-limit", "abc"], ["-c", "x"], ["--blkio-weight", "70000"], ["--device", "/etc/passwd"],
])
def test_bad_flags_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                                flags: list[str]) -> None:
    ours = strata("run", "--rm", *flags, busybox_image, "true", check=False)
    theirs = dockerd.run("run", "--rm", *flags, docker_busybox, "true", check=False)
    assert (ours.returncode, _error(ours)) == (theirs.returncode, _error(theirs))


def test_namespaces_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str) -> None:
    script = ("df -k /dev/shm | tail -1 | awk '{print $2}'; cat /proc/sys/kernel/shmmax; id -G; "
              "ls -l /dev/mynull | awk '{print $1, $5, $6}'; ls -l /dev/mynet | awk '{print $1, $5, $6, $10}'")
    flags = ["--shm-size", "96m", "--sysctl", "kernel.shmmax=4096", "--group-add", "1234",
             "--device", "/dev/null:/dev/mynull", "--device", "/dev/net:/dev/mynet"]
    ours = strata("run", "--rm", *flags, busybox_image, "sh", "-c", script)
    theirs = dockerd.run("run", "--rm", *flags, docker_busybox, "sh", "-c", script)
    assert ours.stdout == theirs.stdout
    assert strata("run", "--rm", busybox_image, "ls", "/dev").stdout == \
        dockerd.run("run", "--rm", docker_busybox, "ls", "/dev").stdout
    uts = ["--uts", "host", "--pid", "host"]
    assert strata("run", "--rm", *uts, busybox_image, "hostname").stdout == \
        dockerd.run("run", "--rm", *uts, docker_busybox, "hostname").stdout
    fmt = ("{{.HostConfig.ShmSize}} {{.HostConfig.IpcMode}} {{.HostConfig.PidMode}} "
           "{{.HostConfig.UTSMode}} {{.HostConfig.OomKillDisable}} {{.HostConfig.BlkioWeight}} "
           "{{json .HostConfig.Sysctls}} {{json .HostConfig.Devices}} {{json .HostConfig.GroupAdd}} "
           "{{json .HostConfig.LogConfig}}")
    create = ["--pid", "host", "--uts", "host", "--ipc", "shareable", *flags, "--log-opt", "max-size=10m"]
    name = f"parity-ns-{os.getpid()}"
    try:
        strata("create", "--name", name, *create, busybox_image)
        dockerd.run("create", "--name", name, *create, docker_busybox)
        assert strata("inspect", "-f", fmt, name).stdout == dockerd.run("inspect", "-f", fmt, name).stdout
    finally:
        dockerd.run("rm", "-f", name, check=False)
