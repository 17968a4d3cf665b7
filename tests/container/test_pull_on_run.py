"""run pulls a missing image as Docker does ("Unable to find image ... locally", progress on stderr)."""

from __future__ import annotations

from pathlib import Path

import pytest
from container_helpers import Strata, runtime_missing

from peers import Registry

pytestmark = [pytest.mark.peers, pytest.mark.runtime]


def test_run_pulls_a_missing_image(strata: Strata, busybox_tar: Path, distribution_registry: Registry) -> None:
    if reason := runtime_missing():
        pytest.skip(reason)
    ref = f"127.0.0.1:{distribution_registry.port}/strata-test/runpull:1"
    strata("import", "-c", 'CMD ["/bin/sh"]', str(busybox_tar), ref)
    strata("push", ref)
    strata("rmi", ref)
    res = strata("run", "--rm", ref, "cat", "/etc/passwd")
    assert res.stdout.startswith("root:x:0:0:")
    assert res.stderr.startswith(f"Unable to find image '{ref}' locally\n")
    assert "Pull complete" in res.stderr or "Download complete" in res.stderr
    res = strata("run", "--rm", "127.0.0.1:1/nothing/here:1", "true", check=False)
    assert res.returncode == 125 and "Unable to find image" in res.stderr
