"""docs/ARCHITECTURE.md's import rules and 'only the CLI prints or exits', checked on the source."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "strata"

# top-level part -> the parts it may import (besides itself and the base layer)
BASE = {"errors", "digest", "mediatypes", "reference", "spec", "atomicfile", "strata"}
ALLOWED = {
    "errors": set(),
    "atomicfile": set(),
    "digest": {"errors"},
    "mediatypes": set(),
    "reference": {"digest", "errors"},
    "spec": {"digest", "errors", "mediatypes", "strata"},
    "imageconfig": {"errors", "atomicfile", "dockerfile"},
    "dockerfile": {"errors"},
    "archive": {"digest", "errors", "atomicfile"},
    "image": BASE | {"archive"},
    "store": BASE | {"archive"},
    "engine": BASE | {"store", "image", "archive", "transports"},
    "copy": BASE | {"image", "transports"},
    "transports": BASE | {"image", "archive", "store", "engine", "distribution"},
    "distribution": BASE,
    "server": BASE | {"distribution"},
    "container": BASE | {"engine", "archive", "imageconfig", "image"},
    "build": BASE | {"engine", "container", "archive", "imageconfig", "image", "dockerfile", "store"},
    "ops": BASE | {"engine", "transports", "copy", "archive", "imageconfig", "store", "image"},
}
# entry points that are allowed to reach the CLI layer
ENTRY_POINTS = {"strata.__main__", "strata.server.__main__"}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        mod = _module(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name == "strata" or name.startswith("strata."):
                    out[mod].add(name)
    return out


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "strata"


def test_import_rules() -> None:
    bad = []
    for mod, targets in _imports().items():
        part = _part(mod)
        if part in ("cli", "__main__") or mod in ENTRY_POINTS:
            continue
        allowed = ALLOWED.get(part)
        assert allowed is not None, f"{mod}: part {part!r} is missing from the architecture rules"
        for t in targets:
            tp = _part(t)
            if tp != part and tp not in allowed:
                bad.append(f"{mod} imports {t}")
    assert not bad, "\n".join(sorted(bad))


def test_only_the_cli_prints_or_exits() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        mod = _module(path)
        if _part(mod) == "cli" or mod in ENTRY_POINTS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id in ("print", "exit", "quit"):
                    bad.append(f"{mod}:{node.lineno} {f.id}()")
                if isinstance(f, ast.Attribute) and f.attr == "exit" and isinstance(f.value, ast.Name) and f.value.id == "sys":
                    bad.append(f"{mod}:{node.lineno} sys.exit()")
    assert not bad, "\n".join(bad)


def test_every_module_declares_all() -> None:
    missing = []
    for path in SRC.rglob("*.py"):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text())
        if not any(
            isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)
            for n in tree.body
        ) and not any(isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "__all__" for n in tree.body):
            missing.append(_module(path))
    assert not missing, missing
