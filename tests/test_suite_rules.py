"""Rules of the test suite itself: what test modules share lives in helper modules, never in another test module."""

from __future__ import annotations

import ast

from tests.factories import ROOT

TESTS = ROOT / "tests"


def _imported(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_test_module_imports_another_test_module_or_a_conftest():
    """Fixtures come from conftest.py by name; shared code from tests/factories.py and tests/spies.py."""
    offending = {}
    for path in sorted(TESTS.rglob("*.py")):
        bad = sorted(name for name in _imported(path)
                     if name.startswith("tests.") and any(part.startswith("test_") or part == "conftest"
                                                          for part in name.split(".")[1:]))
        if bad:
            offending[str(path.relative_to(ROOT))] = bad
    assert not offending, offending
    assert len(list(TESTS.rglob("test_*.py"))) > 40  # the walk sees the suite
