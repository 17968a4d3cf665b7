"""``save IMAGE >> FILE``: an output opened for appending (O_APPEND) takes the archive as any other.
The layers are copied kernel-side, and sendfile(2) refuses an O_APPEND output (EINVAL): save failed with
``Error: Invalid argument``, exit 1, a partial archive left behind. The copy falls back to read/write when
the kernel takes none of it."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from corehelpers import Strata  # type: ignore[import-not-found]


def test_save_to_an_appended_file(strata: Strata, root: Path, rootfs_tar: Path, tmp_path: Path) -> None:
    strata("import", str(rootfs_tar), "review-append:1")
    out = tmp_path / "appended.tar"
    env = dict(os.environ, STRATA_ROOT=str(root))
    with open(out, "ab") as f:
        proc = subprocess.run([sys.executable, "-m", "strata", "save", "review-append:1"], stdout=f,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=300)  # fmt: skip
    assert (proc.returncode, proc.stderr) == (0, "")
    piped = strata("save", "review-append:1", text=False).stdout
    assert out.read_bytes() == piped  # one image, no repeated layer: nothing in it is the clock's
    with tarfile.open(out) as tar:
        layers = [m for m in tar.getmembers() if m.name.endswith("/layer.tar")]
        assert len(layers) == 1 and layers[0].size > 0
