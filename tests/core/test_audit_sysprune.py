"""Found by the user's-eye audit of issue 15 (``system prune``), side by side with Docker 20.10: ``system
prune --volumes --filter until=…`` is refused by Docker's CLI before it asks or prunes anything (volumes
have no creation filter in 20.10); strata refused only the ``until`` key, as an unknown filter."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from peers import Dockerd


def _error(res: subprocess.CompletedProcess[str]) -> str:
    return re.sub(r"^(Error response from daemon: |Error: )", "", res.stderr.strip())


@pytest.mark.parametrize("spelling", ["until=1h", "UNTIL=24h"])
def test_until_with_volumes_refused_as_docker(strata: Any, dockerd: Dockerd, spelling: str) -> None:
    # no -f: were the check missing, the prompt would read "no" from the empty input and prune nothing
    ours = strata("system", "prune", "--volumes", "--filter", spelling, input="", check=False)
    theirs = dockerd.run("system", "prune", "--volumes", "--filter", spelling, input="", check=False)
    want = 'ERROR: The "until" filter is not supported with "--volumes"'
    assert (theirs.returncode, _error(theirs), theirs.stdout) == (1, want, "")
    assert (ours.returncode, _error(ours), ours.stdout) == (1, want, "")
