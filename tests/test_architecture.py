"""docs/ARCHITECTURE.md's import rules and 'only the CLI prints or exits', checked on the source."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "strata"

# part -> the parts it may import (besides itself and the base layer). A part is a top-level module or
# package of strata, except the image model's modules (``strata.image.spec``, ``.mediatypes``,
# ``.config``): each is its own part, so the value types stay in the base layer while the rest of the
# image package (``image``: ``image.api``) does not.
IMAGE_MODEL = {"strata.image.spec": "image.spec", "strata.image.mediatypes": "image.mediatypes",
               "strata.image.config": "image.config"}
BASE = {"errors", "digest", "image.mediatypes", "reference", "image.spec", "atomicfile", "compat", "containeruse",
        "values", "events", "strata", "jsonfast"}
ALLOWED = {
    "errors": set(),
    "atomicfile": set(),
    "digest": {"errors"},
    "image.mediatypes": set(),
    "reference": {"digest", "errors"},
    "image.spec": {"digest", "errors", "image.mediatypes", "values", "strata", "jsonfast"},
    "values": set(),
    "jsonfast": set(),
    "image.config": {"errors", "atomicfile", "compat", "dockerfile", "image.spec", "digest", "image.mediatypes",
                     "values", "strata"},
    "dockerfile": {"errors", "jsonfast"},
    "archive": {"digest", "errors", "atomicfile"},
    "compat": {"errors"},
    "containeruse": {"digest", "errors"},
    "events": {"atomicfile", "jsonfast"},
    "gotemplate": BASE | {"compat"},
    "image": BASE | {"archive"},
    "store": BASE | {"archive", "rootless"},  # rootless: is_rootless (the store's modes)
    "engine": BASE | {"store", "image", "archive", "rootless"},
    "copier": BASE | {"image", "transports"},
    "transports": BASE | {"image", "archive", "store", "engine", "distribution"},
    "distribution": BASE,
    "server": BASE | {"distribution"},
    "container": BASE | {"engine", "archive", "image.config", "image", "rootless"},
    "api": BASE | {"copier", "transports", "engine", "distribution", "image"},
    "strata": BASE | {"api", "transports", "image"},  # the package's lazy public API
    "ops": BASE | {"engine", "transports", "copier", "archive", "image.config", "store", "image"},
    "build": BASE | {"engine", "container", "archive", "image.config", "image", "dockerfile", "store"},
    "rootless": BASE,
}
# cycles other branches are removing; an entry here is a debt, not a rule
KNOWN_CYCLES: set[frozenset[str]] = set()
# entry points that are allowed to reach the CLI layer
ENTRY_POINTS = {"strata.__main__", "strata.server.__main__"}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _dynamic_target(node: ast.Call) -> tuple[bool, str | None]:
    """Whether ``node`` imports by name (``importlib.import_module``, ``__import__``) and, when the
    name is a string constant, which module."""
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    if name not in ("import_module", "__import__"):
        return False, None
    arg = node.args[0] if node.args else None
    return True, arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def _targets(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        # ``from strata import containeruse`` depends on that module, not on all of ``strata/__init__``
        names = [f"{node.module}.{a.name}" for a in node.names]
        modules = [n for n in names if _is_module(n)]
        return modules if len(modules) == len(names) else [node.module, *modules]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.Call):
        _, target = _dynamic_target(node)
        return [target] if target else []
    return []


def _is_module(name: str) -> bool:
    path = SRC.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _typing_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks (imports for annotations only)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _imports(runtime_only: bool = False) -> dict[str, set[str]]:
    """module -> the strata modules it imports: statements anywhere (lazy ones in functions too) and
    ``import_module``/``__import__`` calls with a constant name; ``runtime_only`` leaves out imports made
    for type annotations only (``if TYPE_CHECKING:``), which cannot form an import cycle."""
    out: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        mod = _module(path)
        tree = ast.parse(path.read_text())
        skip = _typing_only(tree) if runtime_only else set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            for name in _targets(node):
                if name == "strata" or name.startswith("strata."):
                    out[mod].add(name)
    return out


def _part(module: str) -> str:
    if module in IMAGE_MODEL:
        return IMAGE_MODEL[module]
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


def test_no_hidden_imports() -> None:
    """An import by a computed name is invisible to the rules above: only the CLI's group loader
    (``strata.cli.parser``, over its fixed ``GROUPS``) may."""
    bad = []
    for path in SRC.rglob("*.py"):
        mod = _module(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                dynamic, target = _dynamic_target(node)
                if dynamic and target is None and mod != "strata.cli.parser":
                    bad.append(f"{mod}:{node.lineno} imports a module by a computed name")
    assert not bad, "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _module_graph() -> dict[str, set[str]]:
    """Module -> modules it imports; a package's ``__init__`` importing its own modules is how a
    package exports, not a dependency of theirs on it, so those edges are left out."""
    graph: dict[str, set[str]] = {}
    for mod, targets in _imports(runtime_only=True).items():
        graph[mod] = {t for t in targets if t != mod and not t.startswith(mod + ".")}
    return graph


def test_no_import_cycles() -> None:
    cycles = [c for c in _cycles(_module_graph()) if frozenset(c) not in KNOWN_CYCLES]
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checks_see_lazy_and_dynamic_imports() -> None:
    """The reader finds imports inside functions and by constant name, and the cycle finder finds cycles."""
    tree = ast.parse("def f():\n    import strata.a\n    importlib.import_module('strata.b')\n    __import__('strata.c')\n")
    found = [t for node in ast.walk(tree) for t in _targets(node)]
    assert found == ["strata.a", "strata.b", "strata.c"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_image_model_lives_in_the_image_package() -> None:
    """spec, mediatypes and the config documents moved into ``strata.image`` (issue 12), with no shim
    left at the old paths; the value types stay base while the rest of the package does not."""
    assert [n for n in ("spec", "mediatypes", "imageconfig") if (SRC / f"{n}.py").exists()] == []
    assert [_part(f"strata.image.{n}") for n in ("spec", "mediatypes", "config", "api")] == [
        "image.spec", "image.mediatypes", "image.config", "image"]
    assert "image" not in ALLOWED["image.spec"] and "image.config" not in BASE
