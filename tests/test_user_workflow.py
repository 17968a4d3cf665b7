"""The user's whole workflow (shared/seed), as `make demo` runs it: every step's output checked against
what Docker prints in shared/reference/docker/, with IDs, ports and times normalised."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _blocks(output: str) -> dict[str, list[str]]:
    """Command line -> its output lines, from the demo's `$ cmd` echo lines."""
    out: dict[str, list[str]] = {}
    current = None
    for line in re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines():
        if line.startswith("$ "):
            current = line[2:]
            out[current] = []
        elif current is not None and line.strip():
            out[current].append(line)
    return out


@pytest.mark.runtime
def test_demo_runs_the_users_workflow() -> None:
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    b = _blocks(proc.stdout)
    ident = r"[0-9a-f]{12}"
    hist = b["strata history commit_test:second"]
    # the CREATED column is as wide as its widest cell, "Less than a second ago" only when history ran within a
    # second of the commit (not so on a loaded machine): the header's width follows the cells, whatever they say
    head = re.fullmatch(r"IMAGE {10}CREATED( +)CREATED BY {26}SIZE {6}COMMENT", hist[0])
    widest = max(len(row[15:hist[0].index("CREATED BY")].rstrip()) for row in hist[1:])
    assert head and len("CREATED" + head.group(1)) == max(widest, len("CREATED")) + 3, hist
    assert hist[0].index("CREATED BY") == hist[1].index("sh -c echo test_second!"), hist
    assert re.fullmatch(ident + r"   .* ago +sh -c echo test_second! >> second   13B       my second commit", hist[1])
    assert re.fullmatch(ident + r"   .* ago +sh -c echo test_first! >> first     12B       my first commit", hist[2])
    assert re.fullmatch(ident + r"   .* ago +1\.\d\dMB    ", hist[3] + "    ") or hist[3].endswith("Imported from -")
    first_id = hist[2][:12]
    second_id = hist[1][:12]
    conflict = [k for k in b if k == "strata rmi commit_test:first"]
    assert conflict
    # the first rmi is refused, the second (after stop + rm) untags only
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
    assert re.search(
        r'Error: conflict: unable to remove repository reference "commit_test:first" \(must force\) - container '
        + ident + f" is using its referenced image {first_id}",
        proc.stdout + proc.stderr,
    )
    assert "Untagged: commit_test:first" in text
    second = b["strata rmi commit_test:second"]
    assert second[0] == "Untagged: commit_test:second"
    assert [line.split(":")[0] for line in second[1:]] == ["Deleted"] * 4
    assert second[1].startswith(f"Deleted: sha256:{second_id}")
    assert second[3].startswith(f"Deleted: sha256:{first_id}")
    pushes = [k for k in b if k.startswith("strata push") and "my-image-name" in k]  # the notes' push, not the registry container's
    assert len(pushes) == 1  # the same command twice: the dict keeps the second run
    again = b[pushes[0]]
    assert again[0].startswith("The push refers to repository [127.0.0.1:")
    assert sum(1 for line in again if line.endswith(": Layer already exists")) == 2
    assert re.fullmatch(r"0\.0: digest: sha256:[0-9a-f]{64} size: \d+", again[-1])
    pull = next(v for k, v in b.items() if k.startswith("strata pull"))
    assert pull[0] == "0.0: Pulling from alicek107/my-image-name"
    assert re.fullmatch(ident + ": Already exists", pull[1]), pull
    assert pull[-2].startswith("Status: Downloaded newer image for 127.0.0.1:")
    rmi_both = next(v for k, v in b.items() if k.startswith("strata rmi 127.0.0.1"))
    assert re.fullmatch(r"Untagged: 127\.0\.0\.1:\d+/alicek107/my-image-name@sha256:[0-9a-f]{64}", rmi_both[1])
    search = next(v for k, v in b.items() if k.startswith("strata search"))
    assert search[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    assert search[1].split()[0] == "alicek107/my-image-name"  # as the registry names it, as Docker prints it
    assert "demo finished" in proc.stdout
