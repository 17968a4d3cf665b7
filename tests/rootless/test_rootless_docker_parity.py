"""The build corpus built by an unprivileged user's strata and by Docker 20.10's classic builder from the
same context: the same files (content, modes, owners, links), config, history lines (COPY/ADD content
hashes included) and builder lines; the rootless image loads and runs in Docker."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from rootlesshelpers import User

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_rootless_corpus import _structure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "build"))
from imagetree import config_view, history_view, read_image
from test_docker_compare import CASES, COMMON_FLAGS, _docker_build, _prepare, _without_unused_stage

pytestmark = [pytest.mark.timeout(900), pytest.mark.peers]

BUSYBOX = "strata-test/busybox:latest"


@pytest.mark.parametrize("case", CASES)
def test_rootless_build_as_dockers(case: str, user: User, dockerd: Any, docker_busybox: str,
                                   busybox_tar: Path) -> None:  # fmt: skip
    if user.strata("images", "-q", BUSYBOX).stdout == "":
        shutil.copy(busybox_tar, user.home / "bb-docker.tar")
        os.chown(user.home / "bb-docker.tar", user.uid, user.gid)
        user.strata("import", "-c", 'CMD ["/bin/sh"]', "bb-docker.tar", BUSYBOX)
    where = user.home / f"docker-{case}"
    where.mkdir()
    ctx = _prepare(case, where)
    for path in [where, ctx, *ctx.rglob("*")]:
        os.chown(path, user.uid, user.gid, follow_symlinks=False)
    tag = f"rl-docker-{case}:1"
    d = _docker_build(dockerd, ctx, tag)
    assert d.returncode == 0, d.stdout + d.stderr
    out = user.strata("build", "--network", "none", "-t", tag, *COMMON_FLAGS, str(ctx), timeout=600).stdout
    dockerd.run("save", "-o", str(where / "d.tar"), tag)
    user.strata("save", "-o", str(where / "s.tar"), tag)
    d_tree, d_doc = read_image(where / "d.tar")
    s_tree, s_doc = read_image(where / "s.tar")
    differ = {k: (d_tree.get(k), s_tree.get(k)) for k in sorted(set(d_tree) | set(s_tree))
              if d_tree.get(k) != s_tree.get(k)}  # fmt: skip
    assert not differ, differ
    assert config_view(s_doc) == config_view(d_doc)
    assert history_view(s_doc) == history_view(d_doc)
    assert _structure(out) == _without_unused_stage(_structure(d.stdout))
    strata_id = user.strata("inspect", "--format", "{{.Id}}", tag).stdout.strip()
    dockerd.run("rmi", tag)
    dockerd.run("load", "-i", str(where / "s.tar"))
    assert dockerd.run("inspect", "--format", "{{.Id}}", tag).stdout.strip() == strata_id
    ran = dockerd.run(
        "run", "--rm", "--network", "none", "--entrypoint", "/bin/busybox", tag, "true", check=False
    )
    assert ran.returncode == 0, ran.stderr
    dockerd.run("rmi", tag)
