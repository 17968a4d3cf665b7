"""Issue 10's audit of ``.dockerignore`` next to Docker 20.10: its CLI walks into an excluded directory
only when a ``!`` pattern's text begins with that directory's path (``!**/*.js`` brings nothing back
from an excluded ``node_modules``; ``!*/b`` nothing from an excluded ``a``), and such a directory is not
sent itself: the daemon makes it (0755) for what is sent below it, and it is not there when nothing is.
The ``Sending build context`` size counts what is sent (a six-character size is right-aligned too)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from build_helpers import BUSYBOX, Strata

FILES = ("a/1.txt", "a/b/2.txt", "a/b/c/3.txt", "x/y/4.md", "x/5.md", "node_modules/m/i.js", "keep.md", "README.md",
         ".hidden", "q/r/z.txt", "q/y.txt")  # fmt: skip
DOCKERFILE = f"""FROM {BUSYBOX}
COPY . /ctx/
RUN cd /ctx && find . -path ./Dockerfile -prune -o -path ./.dockerignore -prune -o -print | sort | tr "\\n" " " && \\
    stat -c "%a %n" q q/r 2>/dev/null; true
"""
ALL_A = "./a ./a/1.txt ./a/b ./a/b/2.txt ./a/b/c ./a/b/c/3.txt"
NODE = "./node_modules ./node_modules/m ./node_modules/m/i.js"
Q = "./q ./q/r ./q/r/z.txt ./q/y.txt"
X = "./x ./x/5.md ./x/y ./x/y/4.md"
# .dockerignore -> what Docker 20.10 put in the image (and the modes of q, q/r: 0700 in the context)
CASES = {
    "glob-exception": ("node_modules\n!**/*.js\n", f". ./.hidden ./README.md {ALL_A} ./keep.md {Q} {X}", "700"),
    "exception-below-unwalked": ("node_modules\n!node_modules/*/i.js\n", f". ./.hidden ./README.md {ALL_A} ./keep.md {Q} {X}",
                                 "700"),
    "exception-deep": ("a\n!a/b/c/3.txt\n", f". ./.hidden ./README.md ./a ./a/b ./a/b/c ./a/b/c/3.txt ./keep.md {NODE} {Q} {X}",
                       "700"),
    "exception-glob-dir": ("a\n!*/b\n", f". ./.hidden ./README.md ./keep.md {NODE} {Q} {X}", "700"),
    "implicit-dirs-0755": ("q\n!q/r/z.txt\n", f". ./.hidden ./README.md {ALL_A} ./keep.md {NODE} ./q ./q/r ./q/r/z.txt {X}",
                           "755"),
    "mixed": ("**/*.md\n!README.md\n/a/b/c\nnode_modules\n!node_modules/m/i.js\n.hidden\n./x/../x/y\n",
              f". ./README.md ./a ./a/1.txt ./a/b ./a/b/2.txt {NODE} {Q} ./x", "700"),
}  # fmt: skip


def _ctx(tmp_path: Path, ignore: str) -> Path:
    ctx = tmp_path / "ctx"
    for rel in FILES:
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(rel + "\n")
        (ctx / rel).chmod(0o644)
    for d in [p for p in ctx.rglob("*") if p.is_dir()]:
        d.chmod(0o700 if d.name in ("q", "r") else 0o755)
    ctx.chmod(0o755)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / ".dockerignore").write_text(ignore)
    return ctx


def _listing(stdout: str) -> tuple[str, str]:
    lines = stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(" ---> Running in "))
    found, second = lines[at + 1], lines[at + 2]  # the listing then "MODE q", next line "MODE q/r"
    return found.rsplit(" ", 2)[0].strip(), f"{found.split()[-2]} {second.split()[0]}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_context_as_docker_sends_it(strata: Strata, busybox: str, tmp_path: Path, case: str) -> None:
    ignore, listing, mode = CASES[case]
    out = strata("build", "--network", "none", str(_ctx(tmp_path, ignore))).stdout
    found, modes = _listing(out)
    assert found == listing
    assert modes == f"{mode} {mode}"


@pytest.mark.peers
@pytest.mark.parametrize("case", sorted(CASES))
def test_context_as_docker(dockerd: Any, docker_busybox: str, strata: Strata, busybox: str, tmp_path: Path,
                           case: str) -> None:  # fmt: skip
    ctx = _ctx(tmp_path, CASES[case][0])
    env = dict(dockerd.env, DOCKER_BUILDKIT="0")
    theirs = subprocess.run(dockerd.argv("build", "--no-cache", "--network", "none", str(ctx)), env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    ours = strata("build", "--no-cache", "--network", "none", str(ctx))
    mask = lambda s: [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in s.splitlines()]  # noqa: E731
    assert mask(ours.stdout) == mask(theirs.stdout)  # the Sending line (the size sent) and the files
