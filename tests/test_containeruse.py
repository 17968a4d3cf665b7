"""The store learns what containers use through strata.containeruse, and never fails open."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from strata import containeruse

SRC = Path(__file__).resolve().parents[1] / "src"


def _fresh(code: str, root: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter (no provider registered yet) with ``root`` as ``ROOT``."""
    prog = f"from pathlib import Path\nROOT = Path({str(root)!r})\n{code}"
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)})


def test_a_store_without_containers_needs_no_provider(tmp_path: Path) -> None:
    res = _fresh("from strata import containeruse\nprint(containeruse.current(ROOT).images_in_use(ROOT))", tmp_path)
    assert (res.returncode, res.stdout) == (0, "{}\n"), res.stderr


def test_containers_without_a_provider_is_an_error_not_none_in_use(tmp_path: Path) -> None:
    (tmp_path / "containers.db").touch()
    code = (
        "from strata import containeruse\nfrom strata.errors import StrataError\n"
        "try:\n    containeruse.current(ROOT)\nexcept StrataError as e:\n    print('refused:', e)\n"
    )
    res = _fresh(code, tmp_path)
    assert res.stdout.startswith("refused: the store at "), res.stderr


def test_the_container_package_registers_itself(tmp_path: Path) -> None:
    code = (
        "import strata.container.usage\nfrom strata import containeruse\n"
        "print(type(containeruse.current(ROOT)).__name__)\n"
        "import sys\nprint('strata.container.lifecycle' in sys.modules)"
    )
    res = _fresh(code, tmp_path)
    # registered, and the heavy container modules are not loaded until a question is asked
    assert res.stdout.split() == ["StoreContainerUse", "False"], res.stderr


def test_rmi_asks_the_registered_provider(tmp_path: Path) -> None:
    from strata.engine import Engine

    class Recorder(containeruse.NoContainerUse):
        asked: list[str] = []

        def images_in_use(self, root: Path) -> dict:  # type: ignore[type-arg]
            self.asked.append("images")
            return {}

    rec = Recorder()
    containeruse.register(rec)
    try:
        engine = Engine.open(tmp_path)
        try:
            assert engine.container_use() == {}
        finally:
            engine.close()
    finally:
        containeruse._registered.remove(rec)
    assert rec.asked == ["images"]
