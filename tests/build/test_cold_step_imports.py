"""A cold build's step containers load only the container machinery an ordinary container uses
(issue 10: importing strata.container.lifecycle was a good part of the first RUN step's cost). The
keep-id user namespace's modules (strata.rootless.keepid, its idmap, strata.container.keepidfiles)
are loaded by the keep-id containers alone, ``--cpus``'s fractions (and decimal) by a ``--cpus`` alone; the build runs in a fresh interpreter, as the ``strata``
console script does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from build_helpers import Strata

SRC = Path(__file__).resolve().parents[2] / "src"

DRIVER = """
import sys
from strata.cli.main import main
rc = main(sys.argv[2:])
sys.stdout.flush()
import json
with open(sys.argv[1], "w") as f:
    json.dump({"rc": rc, "modules": sorted(sys.modules)}, f)
"""

ONLY_FOR_KEEP_ID = ("strata.rootless.keepid", "strata.rootless.idmap", "strata.container.keepidfiles")
ONLY_FOR_CPUS = ("fractions", "decimal")  # --cpus's rational number (strata.container.resources)


def test_a_cold_build_step_loads_no_keep_id_machinery(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {busybox}\nRUN echo ran > /ran\nCMD [\"cat\", \"/ran\"]\n")
    report = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(SRC), "STRATA_ROOT": str(root)}
    res = subprocess.run(
        [sys.executable, "-c", DRIVER, str(report), "build", "--no-cache", "-q", "--network", "none",
         "-t", "coldimports/t:1", str(ctx)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    data = json.loads(report.read_text())
    assert data["rc"] == 0, res.stderr
    modules = set(data["modules"])
    assert "strata.container.lifecycle" in modules  # the step ran a container: the measurement sees it
    assert [m for m in ONLY_FOR_KEEP_ID if m in modules] == []
    assert [m for m in ONLY_FOR_CPUS if m in modules] == []
    assert strata("run", "--rm", "coldimports/t:1").stdout == "ran\n"
    strata("rmi", "coldimports/t:1")


def test_lifecycle_keep_id_word_is_keepids() -> None:
    from strata.container.lifecycle import KEEP_ID
    from strata.rootless.keepid import KEEP_ID as KEEPID_WORD

    assert KEEP_ID == KEEPID_WORD
