"""``rm -f`` of a paused container removes it, as Docker's does (it printed runc's ``resume failed:
container does not exist``, exited 1 and left the record: runc's ``kill --all`` had already thawed and
ended the frozen tasks before the resume that was meant to let them take their SIGKILL)."""

from __future__ import annotations

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.runtime


def test_rm_force_of_a_paused_container(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "rmpaused", "--network", "none", busybox_image, "sh", "-c", "while :; do :; done")
    try:
        strata("pause", "rmpaused")
        res = strata("rm", "-f", "rmpaused", check=False)
        assert (res.returncode, res.stdout, res.stderr) == (0, "rmpaused\n", "")
        assert strata("ps", "-aq", "--filter", "name=rmpaused").stdout == ""
    finally:
        strata("rm", "-f", "rmpaused", check=False)
