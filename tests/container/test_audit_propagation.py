"""Found by the user's-eye audit of issue 9 (bind propagation), side by side with Docker 20.10: a bind
with ``shared``/``rshared`` (``slave``/``rslave``) propagation whose source is on a host mount that is
not shared (neither shared nor a slave) is refused when the container starts, with Docker's words;
strata started it with a propagation that could never happen. And where the source is shared, a mount
made in the container reaches the host (Docker sets the runtime's rootfsPropagation to shared; strata's
bind was a slave, so nothing propagated back)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_helpers import Strata

from peers import Dockerd
from strata.container.volumes import check_propagation
from strata.errors import StrataError

MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /srv/shared rw,relatime shared:7 - tmpfs tmpfs rw
41 27 0:51 / /srv/slave rw,relatime master:7 - tmpfs tmpfs rw
42 27 0:52 / /srv/my\\040dir rw,relatime - tmpfs tmpfs rw
"""


def _bind(source: str, prop: str) -> list[dict[str, object]]:
    return [{"Type": "bind", "Source": source, "Destination": "/x", "Propagation": prop}]


def test_the_check_reads_the_mount_holding_the_source() -> None:
    for source, prop in (("/srv/shared/a", "rshared"), ("/srv/shared", "shared"), ("/srv/slave/b", "rslave"),
                         ("/srv/shared/c", "slave"), ("/srv/my dir/d", "rprivate"), ("/etc", "private")):
        check_propagation(_bind(source, prop), MOUNTINFO)
    with pytest.raises(StrataError, match=r"^path /srv/slave/b is mounted on /srv/slave but it is not a shared "
                                          r"mount$"):
        check_propagation(_bind("/srv/slave/b", "rshared"), MOUNTINFO)
    with pytest.raises(StrataError, match=r"^path /srv/my dir/e is mounted on /srv/my dir but it is not a "
                                          r"shared or slave mount$"):
        check_propagation(_bind("/srv/my dir/e", "rslave"), MOUNTINFO)
    with pytest.raises(StrataError, match="mounted on / but it is not a shared mount"):
        check_propagation(_bind("/srv/sharedother", "shared"), MOUNTINFO)
    check_propagation([{"Type": "volume", "Source": "/etc", "Propagation": "rshared"}], MOUNTINFO)


@pytest.fixture
def private_mount(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "private"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(point)], check=True)
    subprocess.run(["mount", "--make-private", str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _error(res: subprocess.CompletedProcess[str]) -> str:
    text = res.stderr.strip().splitlines()[0] if res.stderr.strip() else ""
    return re.sub(r"^(docker: )?(Error response from daemon: |Error: )", "", text).rstrip(".")


@pytest.mark.runtime
@pytest.mark.parametrize("prop", ["rshared", "slave"])
def test_a_private_source_is_refused_as_docker(strata: Strata, busybox_image: str, dockerd: Dockerd,
                                               docker_busybox: str, private_mount: Path, prop: str) -> None:
    before = strata("ps", "-aq").stdout
    args = ("run", "--rm", "-v", f"{private_mount}:/h:{prop}")
    ours = strata(*args, busybox_image, "true", check=False)
    theirs = dockerd.run(*args, "--network", "none", docker_busybox, "true", check=False)
    kind = "shared" if prop.endswith("shared") else "shared or slave"
    want = f"path {private_mount} is mounted on {private_mount} but it is not a {kind} mount"
    assert (theirs.returncode, _error(theirs)) == (125, want)
    assert (ours.returncode, _error(ours)) == (125, want)
    assert strata("ps", "-aq").stdout == before  # --rm: nothing left behind


@pytest.mark.runtime
def test_a_shared_source_propagates(strata: Strata, busybox_image: str, private_mount: Path) -> None:
    subprocess.run(["mount", "--make-shared", str(private_mount)], check=True)
    (private_mount / "sub").mkdir()
    strata("run", "--rm", "--cap-add", "SYS_ADMIN", "-v", f"{private_mount}:/h:rshared", busybox_image,
           "mount", "-t", "tmpfs", "tmpfs", "/h/sub")  # the runtime's root propagation is shared, as Docker's
    try:
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        assert f"{private_mount}/sub" in points
    finally:
        subprocess.run(["umount", "-l", str(private_mount / "sub")], check=False)
