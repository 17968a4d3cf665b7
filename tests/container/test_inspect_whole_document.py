"""``inspect -f '{{.}}'`` prints Docker 20.10's typed document as Go's ``%v`` of its struct: a container's
``types.ContainerJSON`` (``{0xc… [mounts] 0xc… 0xc…}``: the embedded ``*ContainerJSONBase``, whose fields
``.Id``, ``.State`` … are promoted, the Mounts, the ``*Config`` and ``*NetworkSettings``), an image's
``types.ImageInspect``, a network's ``types.NetworkResource``, a volume's ``volume.Volume``; an unknown field
still ends in the raw JSON's ``map has no entry for key``. ``.State.Health`` is a ``*types.Health`` whose
``Log`` is a slice of pointers; an endpoint's NetworkID stays empty until the container's first start.
Side by side with Docker; host-specific values (IDs, addresses, times, paths, subnets) compare by shape."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from container_helpers import Strata

from peers import Dockerd

pytestmark = pytest.mark.runtime

Run = Callable[..., subprocess.CompletedProcess[str]]


def _shape(text: str) -> str:
    text = re.sub(r"0xc[0-9a-f]+", "0xADDR", text)
    text = re.sub(r"\b[0-9a-f]{64}\b", "HEX", text)
    text = re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?( \+0000 UTC|Z)", r"TIME\2", text)
    text = re.sub(r"\b\d+\.\d+\.\d+\.\d+\b", "IP", text)
    return re.sub(r"/[^\s\]\"}]+", "/PATH", text)


def _answer(run: Run, *args: str) -> tuple[int, str, str]:
    res = run("inspect", *args, check=False)
    return res.returncode, _shape(res.stdout), res.stderr.removeprefix("Error: ")


def _wait_healthy(run: Run, name: str) -> None:
    deadline = time.monotonic() + 60
    while run("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip() != "healthy":
        assert time.monotonic() < deadline, f"{name} never became healthy"
        time.sleep(0.2)


@pytest.fixture
def objects(strata: Strata, busybox_image: str, dockerd: Dockerd, docker_busybox: str) -> Iterator[str]:
    """``N`` a running container with a healthcheck, ``Nc`` a created one, ``Nn`` a network, ``Nv`` a volume,
    ``Ni`` an image tag, in both."""
    n = f"iwd{uuid.uuid4().hex[:8]}"
    for run, image in ((strata, busybox_image), (dockerd.run, docker_busybox)):
        run("create", "--name", n, "--health-cmd", "true", "--health-interval", "1s", image, "sleep", "1000")
        run("create", "--name", n + "c", image, "true")
        run("start", n)
        run("volume", "create", n + "v")
        run("network", "create", n + "n")
        run("tag", image, n + "i:latest")
    for run in (strata, dockerd.run):
        _wait_healthy(run, n)
    yield n
    for run in (strata, dockerd.run):
        run("rm", "-f", n, n + "c", check=False)
        run("volume", "rm", n + "v", check=False)
        run("network", "rm", n + "n", check=False)
        run("rmi", n + "i:latest", check=False)


@pytest.mark.parametrize(("suffix", "template"), [
    ("", "{{.}}"), ("c", "{{.}}"), ("n", "{{.}}"), ("v", "{{.}}"), ("v", "{{json .}}"), ("n", "{{json .}}"),
    ("", "{{.Nope}}"), ("i:latest", "{{.Nope}}"), ("n", "{{.Nope}}"), ("v", "{{.Nope}}"),
    ("", "{{.ID}} {{.Name}} {{.RestartCount}} {{.SizeRw}} {{.Mounts}} {{.ExecIDs}} {{.Path}} {{.Args}} {{.Node}}"),
    ("", "{{.Id}} {{.SizeRw}}"), ("c", "{{.Name}} {{.SizeRw}} {{.Node}}"), ("n", "{{.ID}} {{.Name}}"), ("n", "{{.Id}} {{.Peers}}"),
    ("", "{{index . \"Name\"}} {{range $k, $v := .GraphDriver}}{{$k}} {{end}}"),
    ("c", "{{range .NetworkSettings.Networks}}[{{.NetworkID}}]{{end}}"),
    ("c", "{{json .NetworkSettings.Networks.bridge.NetworkID}}"),
    ("", "{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{if .State.Health.Log}}some{{end}}"),
    ("", "{{with index .State.Health.Log 0}}{{.ExitCode}} [{{.Output}}] {{.Start}} {{.End}}{{end}}"),
    ("", "{{with index .State.Health.Log 0}}{{.}} {{json .}}{{end}}"),
    ("n", "{{.ConfigFrom}} {{.Peers}} {{.Services}} {{json .ConfigFrom}}"),
])
def test_whole_document_as_dockers_struct(strata: Strata, dockerd: Dockerd, objects: str, suffix: str,
                                          template: str) -> None:
    name = objects + suffix
    assert _answer(strata, "-f", template, name) == _answer(dockerd.run, "-f", template, name)


def test_health_is_a_pointer_with_a_slice_of_pointers(strata: Strata, dockerd: Dockerd, objects: str) -> None:
    """``{{.State}}`` shows the ``*Health`` as an address; ``{{.State.Health}}`` its Log as addresses."""
    for template in ("{{.State}}", "{{.State.Health}}"):
        ours, theirs = (re.sub(r"0xADDR( 0xADDR)*", "0xADDR…", _answer(run, "-f", template, objects)[1])
                        for run in (strata, dockerd.run))
        ours, theirs = (re.sub(r"true false false false false \d+ 0", "PID", t) for t in (ours, theirs))
        assert ours == theirs
        assert "0xADDR" in ours


_IMAGE = re.compile(r"\{sha256:HEX \[[^\]]+\] \[\]  Imported from - TIMEZ  0xADDR \S+  0xADDR amd64  linux  \d+ \d+ "
                    r"\{map\[[^\]]+\] \w+\} \{layers \[sha256:HEX\] \} \{TIME \+0000 UTC\}\}\n")


def test_image_document(strata: Strata, dockerd: Dockerd, objects: str) -> None:
    """types.ImageInspect's fields in Go's order (its Config and ContainerConfig pointers); the tags, the
    version and the graph driver are the engine's own, so the shape is compared."""
    for run in (strata, dockerd.run):
        code, out, err = _answer(run, "-f", "{{.}}", objects + "i:latest")
        assert (code, err) == (0, "")
        assert _IMAGE.fullmatch(out), out


def test_sizes_with_s(strata: Strata, dockerd: Dockerd, objects: str) -> None:
    template = "{{.SizeRw}} {{json .SizeRootFs}} {{.SizeRootFs}} {{.ContainerJSONBase.SizeRw}}"
    for args in (("-s", "-f", template), ("-f", template), ("-s", "-f", "{{.}}")):
        ours, theirs = _answer(strata, *args, objects + "c"), _answer(dockerd.run, *args, objects + "c")
        assert ours[0] == theirs[0] == 0
        assert re.sub(r"\d{4,}", "N", ours[1]) == re.sub(r"\d{4,}", "N", theirs[1])


def test_image_id_is_the_go_field_id(strata: Strata, dockerd: Dockerd, objects: str) -> None:
    """``ID`` (tag ``json:"Id"``) reads the struct; ``.Id`` only the raw JSON, where a struct-only field fails."""
    for template in ("{{.ID}} {{.Variant}}|{{.OsVersion}}", "{{.Id}} {{.Variant}}", "{{.Id}} {{.Os}}"):
        ours, theirs = (_answer(run, "-f", template, objects + "i:latest") for run in (strata, dockerd.run))
        assert ours == theirs
