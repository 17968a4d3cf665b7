"""Start-up: each everyday command imports only what it uses, and the import set does not grow back.

Every command runs in a fresh interpreter, as the ``strata`` console script does; the modules it
loaded are compared with what the command needs (issue 12: no asyncio, aiohttp, cryptography, yaml …
for ``images``; ``--version`` builds no parser at all). ``bench/startup_bench.py`` measures the time.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
IMAGE = "startup/test:1"

# never needed to list or inspect images or containers: the registry server, TLS, HTTP, compression
# codecs of layers, YAML, threads and subprocesses (images/inspect/history only)
HEAVY = frozenset({"asyncio", "aiohttp", "cryptography", "yaml", "ssl", "http", "email", "bcrypt",
                   "isal", "zstandard", "concurrent", "multiprocessing", "urllib.request", "strata.server",
                   "strata.distribution", "strata.transports", "strata.copy"})
IMAGE_ONLY = HEAVY | {"socket", "subprocess", "ctypes", "threading", "strata.container.lifecycle", "strata.cli.containers",
                      "strata.gotemplate"}
# modules beyond a bare interpreter's: today's count plus a little room; raise it only with a reason
BUDGET = {"images": 130, "ps -a": 160, "inspect": 130, "history": 130, "--version": 10}

DRIVER = """
import sys
from strata.cli.main import main
rc = main(sys.argv[2:])
modules = sorted(sys.modules)
sys.stdout.flush()
import json
with open(sys.argv[1], "w") as f:
    json.dump({"rc": rc, "modules": modules}, f)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def _modules_of(tmp_path: Path, *args: str) -> tuple[int, str, set[str]]:
    report = tmp_path / "modules.json"
    res = subprocess.run([sys.executable, "-c", DRIVER, str(report), *args], capture_output=True, text=True,
                         env=_env(), timeout=120)
    data = json.loads(report.read_text())
    return data["rc"], res.stdout, set(data["modules"])


def _baseline(tmp_path: Path) -> set[str]:
    out = tmp_path / "base.json"
    code = "import sys\nmodules = sorted(sys.modules)\nimport json\njson.dump(modules, open(sys.argv[1], 'w'))"
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, env=_env())
    return set(json.loads(out.read_text()))


def _loaded(modules: set[str], names: frozenset[str]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("startup")
    tar = root / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        info = tarfile.TarInfo("hello")
        info.size = 6
        t.addfile(info, io.BytesIO(b"hello\n"))
    subprocess.run([sys.executable, "-m", "strata", "--root", str(root / "store"), "import", str(tar), IMAGE],
                   check=True, capture_output=True, env=_env())
    return root / "store"


@pytest.mark.parametrize(
    ("command", "args", "shows"),
    [
        ("images", ["images"], "startup/test"),
        ("inspect", ["inspect", IMAGE], '"startup/test:1"'),
        ("history", ["history", IMAGE], "Imported from -"),
        ("ps -a", ["ps", "-a"], "CONTAINER ID"),
    ],
)
def test_a_command_imports_only_what_it_uses(store: Path, tmp_path: Path, command: str, args: list[str],
                                             shows: str) -> None:
    rc, out, modules = _modules_of(tmp_path, "--root", str(store), *args)
    assert rc == 0 and shows in out  # the command did its job
    forbidden = HEAVY if command == "ps -a" else IMAGE_ONLY
    assert _loaded(modules, forbidden) == []
    grown = len(modules - _baseline(tmp_path))
    assert grown <= BUDGET[command], f"{command} imports {grown} modules beyond a bare interpreter"


def test_version_builds_no_parser(tmp_path: Path) -> None:
    rc, out, modules = _modules_of(tmp_path, "--version")
    assert (rc, out) == (0, "strata 0.1.0\n")
    assert sorted(m for m in modules if m.startswith("strata")) == ["strata", "strata.cli", "strata.cli.main"]
    assert _loaded(modules, frozenset({"argparse", "sqlite3", "dataclasses", "typing", "pathlib", "json"})) == []
    assert len(modules - _baseline(tmp_path)) <= BUDGET["--version"]


def test_the_check_sees_a_heavy_import(tmp_path: Path) -> None:
    """The same driver, made to import asyncio, is caught: the test can fail."""
    report = tmp_path / "m.json"
    code = DRIVER.replace("from strata.cli.main import main", "import asyncio\nfrom strata.cli.main import main")
    subprocess.run([sys.executable, "-c", code, str(report), "--version"], check=True, capture_output=True, env=_env())
    assert _loaded(set(json.loads(report.read_text())["modules"]), HEAVY) == ["asyncio", "concurrent", "ssl"]
