"""``network connect --link target:alias NET C`` on a running container, side by side with a private
dockerd: the aliases resolve in C at once (Docker's per-container DNS; strata's /etc/hosts lines, as
``run --link`` on a user network writes them), a target started later too, and the endpoint's Links."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import peers

pytestmark = pytest.mark.peers


@pytest.fixture
def strata(root: Path) -> Any:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "strata", *args], capture_output=True, text=True,
                              env=dict(os.environ, STRATA_ROOT=str(root)), timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"strata {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


def _resolved(run: Any, cname: str, name: str) -> str:
    """The address ``name`` resolves to in container ``cname`` ("" when it does not)."""
    out = run("exec", cname, "sh", "-c", f"ping -c1 -W1 {name} 2>&1 | head -1", check=False).stdout
    m = re.match(r"PING \S+ \(([0-9.]+)\)", out)
    return m.group(1) if m else ""


def _ip(run: Any, cname: str, net: str) -> str:
    return str(run("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}', cname)
               .stdout.strip())


def test_connect_link_on_a_running_container_resolves(strata: Any, dockerd: Any, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    tar = peers.busybox_rootfs_tar(tmp_path / "rootfs.tar", applets=(*peers.BUSYBOX_APPLETS, "ping"),
                                   extra_files={"etc/cl-id": tag.encode()})
    name, net, home = f"cl/links-{tag}:1", f"cl-net-{tag}", f"cl-home-{tag}"
    child, parent, late = f"cl-child-{tag}", f"cl-parent-{tag}", f"cl-late-{tag}"
    links = [f"{child}:kid", f"calias-{tag}:x", f"nonexistent-{tag}:zz", f"{late}:late"]
    base = 200 + int(tag[:2], 16) % 50
    try:
        for octet, run in ((0, dockerd.run), (1, strata)):  # subnets of their own: neither sees the other's
            run("import", "-c", 'CMD ["/bin/sh"]', str(tar), name)
            third = int(tag[2:4], 16) % 60 * 4 + octet * 2
            run("network", "create", "--subnet", f"10.{base}.{third}.0/24", net)
            run("network", "create", "--subnet", f"10.{base}.{third + 1}.0/24", home)
            run("run", "-d", "--name", child, "--network", net, "--network-alias", f"calias-{tag}", name, "sleep", "600")
            run("run", "-d", "--name", parent, "--network", home, name, "sleep", "600")
            run("network", "connect", *[f"--link={v}" for v in links], net, parent)
        fmt = f'{{{{json (index .NetworkSettings.Networks "{net}").Links}}}}'
        assert strata("inspect", "-f", fmt, parent).stdout == dockerd.run("inspect", "-f", fmt, parent).stdout
        for tool, run in (("docker", dockerd.run), ("strata", strata)):
            ip = _ip(run, child, net)
            assert [_resolved(run, parent, n) for n in ("kid", "x", child, "zz")] == [ip] * 3 + [""], tool
            run("run", "-d", "--name", late, "--network", net, name, "sleep", "600")
            assert _resolved(run, parent, "late") == _ip(run, late, net), tool
    finally:
        for run in (dockerd.run, strata):
            run("rm", "-f", parent, child, late, check=False)
            run("network", "rm", net, home, check=False)
