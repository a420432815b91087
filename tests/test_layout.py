"""The package's layout holds: no import circle, arrows only point down the layers, mlflow only in wtc.store, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wtc"
#: Each layer imports only the layers below it (and itself); the order of DESIGN's "Where things live".
LAYERS = ("cli", "bench", "ops", "run", "store", "inference", "tuning", "evaluation", "models", "data")
RANK = {name: len(LAYERS) - i for i, name in enumerate(LAYERS)}
RANK["bench"] = RANK["cli"] + 0.5  # an entry point that reuses the CLI's argument types
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(path: Path, module: str, is_package: bool) -> set[str]:
    """Every module named by an import in ``path``, inside functions too (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for sub in node.body for n in ast.walk(sub)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        targets = {resolve(n) for n in _imports(path, module, path.name == "__init__.py") if n.startswith("wtc")}
        graph[module] = {t for t in targets if t and t != module and not t.startswith(module + ".")}
    return graph


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_no_import_circle():
    graph = _graph()
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v), on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def test_arrows_point_down_the_layers():
    wrong = []
    for module, targets in _graph().items():
        layer = _layer(module)
        for target in targets:
            other = _layer(target)
            if layer is None:
                if other is not None and module != "wtc":  # a leaf (errors, sqlite, ...) imports no layer
                    wrong.append(f"{module} -> {target}")
            elif other is not None and other != layer and RANK[other] >= RANK[layer]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_only_the_store_imports_mlflow():
    importers = [module for module, path in _modules().items()
                 if any(n == "mlflow" or n.startswith("mlflow.")
                        for n in _imports(path, module, path.name == "__init__.py"))]
    assert importers and all(m.startswith("wtc.store") for m in importers), importers


def test_no_module_is_over_the_limit():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("bad, expected", [("import wtc.ops.promote", "wtc.ops.promote"),
                                           ("from ..ops import promote", "wtc.ops.promote")])
def test_the_checker_sees_imports_inside_functions(tmp_path, bad, expected):
    path = tmp_path / "x.py"
    path.write_text(f"def f():\n    {bad}\n")
    assert expected in _imports(path, "wtc.store.x", False)

