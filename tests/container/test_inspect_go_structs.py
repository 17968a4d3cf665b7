"""``inspect -f`` of a container's ``HostConfig`` and ``NetworkSettings`` as the Docker CLI prints them: Go's
``%v`` of its structs (``container.HostConfig`` with ``Resources`` embedded, ``NetworkSettings`` with its
embedded base and a map of ``*EndpointSettings``; types with a ``String()`` method such as ``units.Ulimit``
and ``blkiodev.ThrottleDevice`` printed by it), ``{{json}}`` as the CLI re-encodes them (field order,
omitempty), and typed maps read as Go reads
them in the CLI's typed pass: a missing label is ``<no value>`` (not an error), ``index`` of one ``""``.
Side by side with Docker; a pointer's address (``0xc000…``, a Go heap address) is not compared."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from container_helpers import Strata

from peers import Dockerd
from strata.gotemplate import parse
from strata.gotemplate.values import GoMap, Pointer, Struct

pytestmark = pytest.mark.runtime

_FLAGS = ["--network", "none", "-e", "A=1", "-l", "x=y", "--restart", "on-failure:2", "-m", "64m", "--cpus", "0.5",
          "--ulimit", "nofile=100:200", "--device", "/dev/null:/dev/n2", "--cap-add", "net_admin", "--dns", "1.1.1.1",
          "--tmpfs", "/t", "--sysctl", "net.ipv4.ip_forward=1", "-v", "/tmp:/h:ro", "--mount", "type=tmpfs,target=/m",
          "--pids-limit", "50", "--oom-kill-disable", "--add-host", "a:1.2.3.4", "--init"]


def _answer(res: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    out = re.sub(r"0xc[0-9a-f]+", "0xADDR", res.stdout)
    out = out.replace(" /sys/devices/virtual/powercap]", "]")  # strata masks it too (Docker 25 does)
    out = re.sub(r"\b[0-9a-f]{64}\b", "", out)  # an endpoint's NetworkID: Docker fills it in at the first start
    return res.returncode, out, res.stderr.removeprefix("Error: ")


@pytest.fixture
def pair(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str) -> Iterator[tuple[str, str]]:
    """(a container with many flags, a plain one) in both."""
    name = f"igs{uuid.uuid4().hex[:8]}"
    for run, image in ((strata, busybox_image), (dockerd.run, docker_busybox)):
        run("create", *_FLAGS, "--name", name, image, "true")
        run("create", "--name", name + "p", image, "true")
    yield name, name + "p"
    for run in (strata, dockerd.run):
        run("rm", "-f", name, name + "p", check=False)


@pytest.mark.parametrize("template", [
    "{{.HostConfig.Resources}}", "{{.NetworkSettings}}", "{{.HostConfig.BlkioDeviceReadBps}} {{.HostConfig.Ulimits}}",
    "{{index .HostConfig.Ulimits 0}} {{(index .HostConfig.Ulimits 0).Soft}}", "{{.HostConfig.CapAdd}}",
    "{{.HostConfig.Memory}} {{.HostConfig.OomKillDisable}} {{.HostConfig.PidsLimit}} {{.HostConfig.Dns}}",
    "{{.HostConfig.CPUShares}} {{.HostConfig.NanoCPUs}} {{.HostConfig.CpuShares}}",
    "{{.HostConfig.Mounts}} {{.HostConfig.Init}} {{.HostConfig.Tmpfs}} {{.HostConfig.Sysctls}}",
    "{{.Config.Labels.nope}}", "{{index .Config.Labels \"nope\"}}|{{.Config.Labels.x}}", "{{.HostConfig.Sysctls.nope}}",
    "{{.NetworkSettings.Networks.bridge}}", "{{.NetworkSettings.Networks.bridge.Aliases}}",
    "{{index .NetworkSettings.Networks \"zz\"}}", "{{.NetworkSettings.Ports.nope}}", "{{.HostConfig.Nope}}",
    "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.Aliases}} {{$v.IPAMConfig}}{{end}}",
])
def test_typed_host_config_and_network_settings(strata: Strata, dockerd: Dockerd, pair: tuple[str, str],
                                                template: str) -> None:
    for name in pair:
        ours, theirs = (_answer(strata("inspect", "-f", template, name, check=False)),
                        _answer(dockerd.run("inspect", "-f", template, name, check=False)))
        assert ours == theirs, name


def test_whole_host_config_and_its_json(strata: Strata, dockerd: Dockerd, pair: tuple[str, str]) -> None:
    for name in pair:
        ours = _answer(strata("inspect", "-f", "{{.HostConfig}}", name))
        theirs = _answer(dockerd.run("inspect", "-f", "{{.HostConfig}}", name))
        assert ours == theirs
        for key in ("HostConfig", "NetworkSettings"):
            mine = json.loads(strata("inspect", "-f", "{{json ." + key + "}}", name).stdout)
            docker = json.loads(dockerd.run("inspect", "-f", "{{json ." + key + "}}", name).stdout)
            assert list(mine) == list(docker)  # the CLI's field order, its omitempty fields left out
            for doc in (mine, docker):
                doc.pop("MaskedPaths", None)
                for endpoint in (doc.get("Networks") or {}).values():
                    endpoint.pop("NetworkID")  # Docker fills it in at the first start
            assert mine == docker


def test_typed_map_and_pointer_semantics() -> None:
    """The template engine's side: a typed map's missing key is Go's invalid value (fields of it too),
    ``index`` gives the element's zero value; a pointer prints its target at the top, an address inside."""
    doc = {"L": GoMap({"a": "1"}), "N": GoMap({"x": Pointer(Struct("T", {"F": 5}))}, zero=None), "Nil": GoMap(nil=True)}
    run = lambda text: parse(text).execute(doc, missing_key_error=True)  # noqa: E731
    assert run("{{.L.b}}|{{.L.b.c}}|{{index .L \"b\"}}|{{.L.a}}") == "<no value>|<no value>||1"
    assert run("{{.N.x}}|{{.N.x.F}}|{{json .N}}|{{json .Nil}}|{{json .L}}") == '{5}|5|{"x":{"F":5}}|null|{"a":"1"}'
    assert re.fullmatch(r"map\[x:0xc[0-9a-f]+\]", run("{{.N}}"))
