"""Found by the user's-eye audit of issue 9 (``inspect`` of restart policies and health), side by side with
Docker 20.10, whose CLI runs an ``inspect --format`` template on the typed ContainerJSON first: without a
health check ``{{.State.Health}}`` is ``<nil>`` and ``{{if .State.Health}}`` false (strata failed with
``map has no entry for key "Health"``); ``{{.HostConfig.RestartPolicy}}`` and a check's
``{{.State.Health}}`` print as Go structs (``{on-failure 2}``, not ``map[...]``)."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime

FORMATS = (
    "{{.State.Health}}",
    "{{if .State.Health}}checked{{else}}unchecked{{end}}",
    "{{json .State.Health}}",
    "{{.HostConfig.RestartPolicy}}",
    "{{json .HostConfig.RestartPolicy}}",
    "{{.HostConfig.RestartPolicy.Name}}",
    "{{.State.Health.Status}}",
)


def _answer(res: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    return res.returncode, res.stdout.strip() or re.sub(r"^(Error: )", "", res.stderr.strip())


def test_inspect_templates_see_typed_structs_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                                       docker_busybox: str) -> None:
    tag = uuid.uuid4().hex[:8]
    plain, checked = f"typed-plain{tag}", f"typed-checked{tag}"
    for run, image in ((strata, busybox_image), (dockerd.run, docker_busybox)):
        run("create", "--name", plain, "--restart", "on-failure:2", image, "sleep", "60")
        run("create", "--name", checked, "--health-cmd", "true", "--health-interval", "1h", image, "sleep", "1000")
    try:
        # no probe within the hour: a started container with a check stays "starting", its log empty
        strata("start", checked)
        dockerd.run("start", checked)
        for fmt in FORMATS:
            for name in (plain, checked):
                ours = _answer(strata("inspect", "-f", fmt, name, check=False))
                theirs = _answer(dockerd.run("inspect", "-f", fmt, name, check=False))
                assert ours == theirs, (fmt, name)
        assert _answer(strata("inspect", "-f", "{{.State.Health}}", checked)) == (0, "{starting 0 []}")
    finally:
        for name in (plain, checked):
            strata("rm", "-f", name, check=False)
            dockerd.run("rm", "-f", name, check=False)
