"""Issue 10's audit of the classic output next to Docker 20.10: a RUN's stderr comes on stdout, each
chunk between ESC[91m and ESC[0m (the daemon's stderr writer; Docker's CLI prints the build's whole
stream to stdout), and the parser's warning for an empty continuation line comes before the first step
(the joined line shown, then the notice that such lines will become errors), on stderr's marks."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

WARNED = f"FROM {BUSYBOX}\n  RUN echo a \\\n# a comment inside\n  b \\\n\n  c\n"
WARNING = ("\x1b[91m[WARNING]: Empty continuation line found in:\n    RUN echo a   b   c\n"
           "[WARNING]: Empty continuation lines will become errors in a future release.\n\x1b[0m")  # fmt: skip


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def test_run_stderr_on_stdout_marked(strata: Strata, busybox: str, tmp_path: Path) -> None:
    r = strata("build", "--network", "none", str(_ctx(tmp_path, f"FROM {BUSYBOX}\nRUN echo err >&2\n")))
    assert "\n\x1b[91merr\n\x1b[0mRemoving intermediate container " in r.stdout
    assert r.stderr == ""


def test_empty_continuation_line_warning(strata: Strata, busybox: str, tmp_path: Path) -> None:
    r = strata("build", "--network", "none", str(_ctx(tmp_path, WARNED)))
    assert r.stdout.split("\n", 2)[2].startswith(WARNING + "Step 1/2 : FROM ")  # after the Sending line
    assert "\na b c\n" in r.stdout


def test_parse_error_before_the_warning(strata: Strata, busybox: str, tmp_path: Path) -> None:
    r = strata("build", str(_ctx(tmp_path, WARNED + "COPY x\n")), check=False)
    assert r.returncode == 1 and "WARNING" not in r.stdout


def _masked(text: str) -> list[str]:
    return [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in text.splitlines()]


@pytest.mark.peers
@pytest.mark.parametrize("dockerfile", [WARNED, f"FROM {BUSYBOX}\nRUN echo err >&2\n"])
def test_output_as_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path,
                          dockerfile: str) -> None:  # fmt: skip
    ctx = _ctx(tmp_path, dockerfile)
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    theirs = subprocess.run(dockerd.argv("build", "--no-cache", "--network", "none", str(ctx)), env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    ours = strata("build", "--no-cache", "--network", "none", str(ctx))
    assert (_masked(ours.stdout), ours.stderr) == (_masked(theirs.stdout), theirs.stderr) and theirs.returncode == 0


HEALTH = f"FROM {BUSYBOX}\nHEALTHCHECK --interval=5s --retries=4 CMD a\nHEALTHCHECK --timeout=2s CMD b\n"


def test_healthcheck_over_another(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """Docker's note; the image's check has what the new one leaves zero from the old one (the step
    container's create merges its parent's config), its history line the check as given."""
    r = strata("build", "-t", "health:1", str(_ctx(tmp_path, HEALTH)))
    assert "Step 3/3 : HEALTHCHECK --timeout=2s CMD b\nNote: overriding previous HEALTHCHECK: [CMD-SHELL a]\n" in r.stdout
    check = strata("inspect", "-f", "{{json .Config.Healthcheck}}", "health:1").stdout
    assert check == '{"Test":["CMD-SHELL","b"],"Interval":5000000000,"Timeout":2000000000,"Retries":4}\n'
    history = strata("history", "--no-trunc", "--format", "{{.CreatedBy}}", "health:1").stdout.splitlines()
    assert history[0] == "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"b\"] \"0s\" \"2s\" \"0s\" '\\x00'}"


@pytest.mark.peers
def test_healthcheck_as_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, HEALTH + "HEALTHCHECK NONE\n")
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    theirs = subprocess.run(dockerd.argv("build", "--no-cache", "-t", "health-as:1", str(ctx)), env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    ours = strata("build", "--no-cache", "-t", "health-as:1", str(ctx))
    assert _masked(ours.stdout) == _masked(theirs.stdout)
    for fmt in ("{{json .Config.Healthcheck}}", "{{json .ContainerConfig.Healthcheck}}"):
        assert strata("inspect", "-f", fmt, "health-as:1").stdout == dockerd.run("inspect", "-f", fmt, "health-as:1").stdout
    fmt = ("history", "--no-trunc", "--format", "{{.CreatedBy}}", "health-as:1")
    assert strata(*fmt).stdout == dockerd.run(*fmt).stdout
    dockerd.run("rmi", "health-as:1")


@pytest.mark.parametrize("last", ["ENTRYPOINT [\"a\"]", "WORKDIR /w", "ARG X=1"])
def test_metadata_step_container_labels(strata: Strata, busybox: str, tmp_path: Path, last: str) -> None:
    """A metadata step's container config (the one the daemon's create filled): labels ``{}``, not null."""
    strata("build", "-t", "labels:1", str(_ctx(tmp_path, f"FROM {BUSYBOX}\n{last}\n")))
    assert strata("inspect", "-f", "{{json .ContainerConfig.Labels}} {{json .Config.Labels}}", "labels:1").stdout == "{} null\n"
