"""Writes strata's console script: an interpreter started with ``-S`` (no ``site``) that finds strata.

``site`` costs every command a few milliseconds before strata runs: it scans site-packages for ``.pth``
files and runs them (setuptools' ``distutils-precedence.pth`` imports ``_distutils_hack``). The script
written here skips it and instead puts on ``sys.path`` exactly the directories ``site`` would have added
in this environment (site-packages, and what its ``.pth`` files name, such as an editable install's
``src``), computed once, at install time. Run it with the environment's interpreter:
``.venv/bin/python scripts/entry_script.py .venv/bin/strata``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

__all__ = ["script_text", "site_paths"]


def site_paths(python: str = sys.executable) -> list[str]:
    """The entries ``site`` adds to ``sys.path`` for ``python`` (in order), found by asking it with and
    without ``site``; ``PYTHONPATH`` is left out of both."""
    code = "import sys, json; print(json.dumps(sys.path[1:]))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    runs = [json.loads(subprocess.run([python, *flag, "-c", code], capture_output=True, text=True, check=True,
                                      env=env).stdout) for flag in ([], ["-S"])]
    return [p for p in runs[0] if p not in runs[1]]


def script_text(python: str, paths: list[str]) -> str:
    return (f"#!{python} -S\n"
            "# strata's console script, started without site: the paths site would add, found at install time\n"
            "import sys\n"
            f"sys.path.extend({paths!r})\n"
            "from strata.cli.main import run\n"
            "run()\n")


def main(target: str) -> int:
    python = os.path.abspath(sys.executable)
    tmp = f"{target}.tmp"
    with open(tmp, "w") as f:
        f.write(script_text(python, site_paths(python)))
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
