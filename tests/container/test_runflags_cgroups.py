"""``run``/``create``'s ``--cgroup-parent``, ``--cgroupns``, ``--device-cgroup-rule``, ``--gpus``,
``--isolation``, ``--storage-opt``, ``--volume-driver``, ``--disable-content-trust`` and ``create -a``
(issues 9 and 15): what reaches the container (its cgroup, cgroup namespace, devices list), inspect's
HostConfig, and Docker 20.10's errors and exit codes side by side with a private dockerd."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime


def _error(res: subprocess.CompletedProcess[str]) -> str:
    # the Docker client's own race: its wait on a container whose start failed may log this line, or not
    stderr = re.sub(r'(?m)^time="[^"]*" level=error msg="error waiting for container: context canceled"\n?', "",
                    res.stderr)
    text = re.sub(r"(?m)^(docker: )?(Error response from daemon: |Error: )?", "", stderr.strip())
    text = re.sub(r"\n*Run '(docker|strata) \w+ --help' for more information$", "", text)
    text = re.sub(r"\n*Usage: .*$", "", text)
    text = re.sub(r"\.?\nSee '(docker|strata) \w+ --help'\.$", "", text)
    return re.sub(r"\b[0-9a-f]{64}\b", "<ID>", text)


def test_cgroup_parent_places_the_container_there(strata: Strata, busybox_image: str) -> None:
    try:
        out = strata("run", "--rm", "--network", "none", "--cgroup-parent", "/runflags-parent", busybox_image,
                     "cat", "/proc/self/cgroup").stdout
    finally:  # the parent stays, as Docker leaves it: not on this host after the test
        for parent in [*Path("/sys/fs/cgroup").glob("*/runflags-parent"), Path("/sys/fs/cgroup/runflags-parent")]:
            with contextlib.suppress(OSError):
                parent.rmdir()
    lines = [line for line in out.split("\n") if ":pids:" in line or line.startswith("0::")]
    assert lines and all(re.search(r":/runflags-parent/[0-9a-f]{64}$", line) for line in lines), out


def test_cgroupns_private_hides_the_host_path(strata: Strata, busybox_image: str) -> None:
    private = strata("run", "--rm", "--network", "none", "--cgroupns", "private", busybox_image,
                     "cat", "/proc/self/cgroup").stdout
    host = strata("run", "--rm", "--network", "none", "--cgroupns", "host", busybox_image,
                  "cat", "/proc/self/cgroup").stdout
    assert all(line.endswith(":/") for line in private.split()), private
    assert any(re.search(r"/strata/[0-9a-f]{64}$", line) for line in host.split()), host


def test_device_cgroup_rule_is_allowed(strata: Strata, busybox_image: str) -> None:
    out = strata("run", "--rm", "--network", "none", "--device-cgroup-rule", "c 42:* rwm", busybox_image, "sh",
                 "-c", "cat /sys/fs/cgroup/devices/devices.list 2>/dev/null || echo v2").stdout.split("\n")
    assert "c 42:* rwm" in out or out[0] == "v2", out


_CASES = [
    ["--gpus", "foo"], ["--gpus", "all,all"], ["--gpus", "foo=1"], ["--gpus", "count=x"],
    ["--isolation", "hyperv"], ["--isolation", "process"], ["--isolation", "default"],
    ["--storage-opt", "size=1G"], ["--storage-opt", "size=1G", "--storage-opt", "foo=bar"],
    ["--storage-opt", "foo"], ["--storage-opt", "foo=bar"], ["--storage-opt", "=1"],
    ["--cgroupns", "foo"], ["--cgroupns", "private"], ["--cgroup-parent", "/a/b"],
    ["--device-cgroup-rule", "foo"], ["--device-cgroup-rule", "c 1:3"], ["--device-cgroup-rule", "c 1:3 rwx"],
    ["--device-cgroup-rule", "x 1:3 rwm"], ["--device-cgroup-rule", "c *:* m"],
    ["--volume-driver", "local", "-v", "/x"], ["--volume-driver", "foo"], ["--disable-content-trust"],
    ["-a", "foo"], ["-a", "stdin"],
]
_FIELDS = ("Isolation", "VolumeDriver", "CgroupnsMode", "CgroupParent", "DeviceCgroupRules", "DeviceRequests")


def test_create_errors_and_fields_match_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                               docker_busybox: str) -> None:
    fmt = " ".join(f"{{{{json .HostConfig.{k}}}}}" for k in _FIELDS) + (
        " {{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}")
    for args in _CASES:
        ours = strata("create", *args, busybox_image, "true", check=False)
        theirs = dockerd.run("create", *args, docker_busybox, "true", check=False)
        try:
            assert (ours.returncode, _error(ours).replace("strata", "X")) == (
                theirs.returncode, _error(theirs).replace("docker", "X")), args
            if theirs.returncode == 0:
                assert strata("inspect", "-f", fmt, ours.stdout.strip()).stdout == dockerd.run(
                    "inspect", "-f", fmt, theirs.stdout.strip()).stdout, args
        finally:
            if theirs.returncode == 0:
                dockerd.run("rm", "-f", theirs.stdout.strip(), check=False)
            if ours.returncode == 0:
                strata("rm", "-f", ours.stdout.strip(), check=False)


def test_gpus_fail_at_start_as_dockers(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                       docker_busybox: str) -> None:
    """No device driver here: create keeps the request, start fails with the daemon's words (exit 1),
    ``run --rm`` exits 125 and leaves nothing behind."""
    for args in (["--gpus", "all"], ["--gpus", "driver=nvidia,capabilities=compute"], ["--gpus", "count=0"]):
        ours = strata("create", *args, busybox_image, "true").stdout.strip()
        theirs = dockerd.run("create", *args, docker_busybox, "true").stdout.strip()
        try:
            fmt = "{{json .HostConfig.DeviceRequests}}"
            assert strata("inspect", "-f", fmt, ours).stdout == dockerd.run("inspect", "-f", fmt, theirs).stdout
            s, d = strata("start", ours, check=False), dockerd.run("start", theirs, check=False)
            assert (s.returncode, _error(s).replace(ours, "<C>")) == (d.returncode, _error(d).replace(theirs, "<C>"))
        finally:
            strata("rm", "-f", ours, check=False)
            dockerd.run("rm", "-f", theirs, check=False)
    name = "parity-gpus-rm"
    s = strata("run", "--rm", "--name", name, "--gpus", "all", busybox_image, "true", check=False)
    d = dockerd.run("run", "--rm", "--name", name, "--gpus", "all", docker_busybox, "true", check=False)
    assert (s.returncode, _error(s)) == (d.returncode, _error(d).rstrip(".")) == (  # run's own full stop
        125, 'could not select device driver "" with capabilities: [[gpu]]')
    assert strata("ps", "-aq", "--filter", f"name={name}").stdout == ""


def test_volume_driver_of_a_named_volume(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                         docker_busybox: str) -> None:
    """A plugin that does not exist: the daemon's NotFound, which Docker 20.10's CLI takes for a missing
    image (it says so and pulls; here the pull cannot reach Docker Hub)."""
    for args in (["--volume-driver", "nosuchplugin", "-v", "runflags-vd:/x"], ["--volume-driver", "nosuch", "-v", "/x"]):
        ours = strata("create", *args, busybox_image, "true", check=False)
        theirs = dockerd.run("create", *args, docker_busybox, "true", check=False)
        assert ours.returncode == theirs.returncode == 1
        assert ours.stderr.split("\n")[0] == theirs.stderr.split("\n")[0].replace(docker_busybox, busybox_image)
        assert "registry-1.docker.io" in ours.stderr and "registry-1.docker.io" in theirs.stderr
    assert strata("volume", "ls", "-q").stdout == ""
    args = ["--volume-driver", "nosuchplugin", "--mount", "type=volume,dst=/y"]
    ours = strata("create", *args, busybox_image, "true", check=False)
    theirs = dockerd.run("create", *args, docker_busybox, "true", check=False)
    try:
        warning = re.compile(r'^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=warning msg="(.*)"\n$')
        assert (ours.returncode, warning.sub(r"\1", ours.stderr)) == (theirs.returncode, warning.sub(r"\1", theirs.stderr))
        assert warning.match(ours.stderr), ours.stderr
    finally:
        strata("rm", "-f", ours.stdout.strip(), check=False)
        dockerd.run("rm", "-f", theirs.stdout.strip(), check=False)
    assert json.loads(strata("inspect", "-f", "{{json .HostConfig.VolumeDriver}}", strata(
        "create", "--volume-driver", "local", "-v", "runflags-vd:/x", busybox_image, "true").stdout.strip()
    ).stdout) == "local"


def test_attach_streams_in_config_as_dockers(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                             docker_busybox: str) -> None:
    """``run -a``/``create -a``: Config.Attach* name the streams given (stdin with ``-i`` too)."""
    fmt = "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}} {{.Config.OpenStdin}}"
    name = "parity-attach-config"
    for cmd, args in (("run", ["-a", "stdout"]), ("run", ["-a", "stderr", "-i"]), ("create", ["-a", "STDOUT"]),
                      ("create", ["-i", "-a", "stderr"])):
        try:
            s = strata(cmd, "--name", name, *args, busybox_image, "true", input="")
            d = dockerd.run(cmd, "--name", name, *args, docker_busybox, "true", input="")
            assert s.returncode == d.returncode == 0
            assert strata("inspect", "-f", fmt, name).stdout == dockerd.run("inspect", "-f", fmt, name).stdout, args
        finally:
            strata("rm", "-f", name, check=False)
            dockerd.run("rm", "-f", name, check=False)
