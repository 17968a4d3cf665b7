"""The remembered content sums of a context directory: a rebuild with nothing changed reads no file
again and still hits the cache; a file changed behind the builder's back (same size, its mtime set
back) is hashed again, because its ctime moved, and its COPY is rebuilt."""

from __future__ import annotations

import json
import os
from pathlib import Path

from build_helpers import BUSYBOX, Strata


def test_changed_file_with_old_mtime_is_rehashed(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "data").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nCOPY data /data\n")
    for i in range(3):
        (ctx / "data" / f"f{i}").write_text(f"content {i}\n")
    strata("build", "-t", "memo:1", str(ctx))
    memo = next((root / "buildcache" / "sums").iterdir())
    assert len(json.loads(memo.read_text())) == 3
    again = strata("build", "-t", "memo:1", str(ctx))
    assert again.stdout.count(" ---> Using cache") == 1
    target = ctx / "data" / "f1"
    st = target.stat()
    target.write_text("CONTENT 1\n")  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = strata("build", "-t", "memo:1", str(ctx))
    assert " ---> Using cache" not in changed.stdout
    assert strata("run", "--rm", "memo:1", "cat", "/data/f1").stdout == "CONTENT 1\n"
