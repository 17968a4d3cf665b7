"""``inspect`` templates print Docker's struct-valued fields as Go's fmt does, side by side with Docker
20.10 (whose CLI runs the template on the typed ContainerJSON / ImageInspect / NetworkResource first):
``{{.State}}`` is ``{created false …}`` (strata printed ``map[…]``), a health check's durations
``30s``, ``{{.Metadata.LastTagTime}}`` and a network's ``{{.Created}}`` Go's ``time.Time`` form."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd, free_port

pytestmark = pytest.mark.runtime

CONTAINER_FORMATS = (
    "{{.State}}",
    "{{.State.Status}} {{.State.Running}}",
    "{{json .State}}",
    "{{index .State \"Status\"}}",  # no index of a struct: Docker's CLI retries on the raw JSON map
    "{{.Config.Healthcheck}}",
    "{{json .Config.Healthcheck}}",
    "{{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Retries}}",
    "{{.HostConfig.LogConfig}}",
    "{{json .HostConfig.LogConfig}}",
    "{{.Mounts}}",
    "{{range .Mounts}}{{.Type}}:{{.RW}}:{{.Propagation}} {{end}}",
    "{{json .Mounts}}",
    "{{.HostConfig.PortBindings}}",
    "{{range $p, $b := .HostConfig.PortBindings}}{{$p}}={{(index $b 0).HostIP}}:{{(index $b 0).HostPort}}{{end}}",
    "{{.NetworkSettings.Ports}}",
    "{{.HostConfig.RestartPolicy}}",
    "{{.Config.Env}} {{.Config.Cmd}} {{.Config.ExposedPorts}} {{.Config.Volumes}} {{.Config.Labels}}",
    "{{.Config.StopTimeout}} {{.Config.OnBuild}} {{.Config.Shell}} {{.Config.MacAddress}}",
    "{{.Config.Nope}}",
    "{{json .Config.ExposedPorts}}",
    "{{.GraphDriver.Name}}",
)

_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z| \+0000 UTC)")


def _answer(res: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    text = res.stdout.strip() or re.sub(r"^(Error: |Error response from daemon: )", "", res.stderr.strip())
    text = re.sub(r"^(\{\w+ (?:\w+ ){5})[1-9]\d*", r"\1<pid>", text)  # a running container's Pid
    # a time other than Go's zero time differs between the two: keep only its form
    return res.returncode, _TIME.sub(lambda m: m.group(0) if m.group(0).startswith("0001") else
                                     ("<go time>" if m.group(0).endswith(" UTC") else "<rfc3339>"), text)


def _compare(strata: Strata, dockerd: Dockerd, formats: tuple[str, ...], *names: str, cmd: tuple[str, ...] = ()) -> None:
    for fmt in formats:
        for name in names:
            ours = _answer(strata(*cmd, "inspect", "-f", fmt, name, check=False))
            theirs = _answer(dockerd.run(*cmd, "inspect", "-f", fmt, name, check=False))
            assert ours == theirs, (fmt, name)


def test_container_structs_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str,
                                     tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    plain, checked = f"gotypes-plain{tag}", f"gotypes-checked{tag}"
    (tmp_path / "bind").mkdir()
    port = free_port()  # both start it: a fixed one may be taken on the host
    for run, image in ((strata, busybox_image), (dockerd.run, docker_busybox)):
        run("create", "--name", plain, "-v", f"{tmp_path / 'bind'}:/mnt:ro", "-p", f"127.0.0.1:{port}:80",
            "--log-opt", "max-size=10m", "--expose", "9000", image, "sleep", "60")
        run("create", "--name", checked, "--health-cmd", "true", "--health-interval", "1h30m",
            "--health-timeout", "1.5s", "--health-retries", "2", image, "sleep", "60")
    try:
        _compare(strata, dockerd, CONTAINER_FORMATS, plain, checked)
        assert _answer(strata("inspect", "-f", "{{.State}}", plain))[1] == \
            "{created false false false false false 0 0  0001-01-01T00:00:00Z 0001-01-01T00:00:00Z <nil>}"
        assert _answer(strata("inspect", "-f", "{{.Config.Healthcheck}}", checked))[1] == "{[CMD-SHELL true] 1h30m0s 1.5s 0s 2}"
        _compare(strata, dockerd, ("{{.State}}", "{{.State.StartedAt}}"), *[
            name for name in (plain,) if strata("start", name).returncode == dockerd.run("start", name).returncode == 0])
    finally:
        for name in (plain, checked):
            strata("rm", "-f", name, check=False)
            dockerd.run("rm", "-f", name, check=False)


def test_image_and_network_times_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                           docker_busybox: str) -> None:
    tag = uuid.uuid4().hex[:8]
    image, net = f"gotypes-img{tag}:1", f"gotypes-net{tag}"
    for run, source in ((strata, busybox_image), (dockerd.run, docker_busybox)):
        run("tag", source, image)
        run("network", "create", "--subnet", f"10.{231 + int(tag[:2], 16) % 20}.0.0/24", net)
        run("volume", "create", net)
    try:
        _compare(strata, dockerd, ("{{.Metadata}}", "{{.Metadata.LastTagTime}}", "{{json .Metadata}}",
                                   "{{.Created}}", "{{.RootFS.Type}}",
                                   "{{.RootFS}}", "{{.Config.Cmd}} {{.Config.Volumes}} {{.Config.Healthcheck}}",
                                   "{{.ContainerConfig.Env}}"), image)
        _compare(strata, dockerd, ("{{.Created}}", "{{json .Created}}", "{{.Name}}", "{{.IPAM}}", "{{json .IPAM}}",
                                   "{{.IPAM.Config}}", "{{.Containers}}"), net, cmd=("network",))
        _compare(strata, dockerd, ("{{.Options}}|{{.Labels}}|{{.UsageData}}|{{.Status}}", "{{json .Labels}}|{{json .Options}}", "{{.CreatedAt}}"),
                 net, cmd=("volume",))
        assert _answer(strata("inspect", "-f", "{{.Metadata.LastTagTime}}", image))[1] == "<go time>"
        assert _answer(strata("network", "inspect", "-f", "{{.Created}}", net))[1] == "<go time>"
    finally:
        for run in (strata, dockerd.run):
            run("rmi", image, check=False)
            run("network", "rm", net, check=False)
            run("volume", "rm", net, check=False)
