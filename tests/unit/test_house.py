"""The house rules of issue 16 that a reader can check by eye, checked here so they stay true."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted((ROOT / "zabd").rglob("*.py"))
#: "About 300 lines": a module that outgrows this holds two concerns, and is split.
MAX_LINES = 330


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def test_every_module_is_about_300_lines_at_most() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


def test_every_module_says_what_it_is_for() -> None:
    assert [str(p.relative_to(ROOT)) for p in MODULES if not ast.get_docstring(_tree(p))] == []


def _is_main_class(node: ast.ClassDef) -> bool:
    """A public class with behaviour of its own: not a plain record, and not an exception."""
    if node.name.startswith("_") or any("Error" in ast.unparse(b) or "Exception" in ast.unparse(b)
                                        for b in node.bases):
        return False
    return any(isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
               and not (item.name.startswith("__") and item.name != "__init__") for item in node.body)


def test_every_main_class_says_what_it_is_for() -> None:
    missing = [f"{p.relative_to(ROOT)}: {node.name}" for p in MODULES for node in _tree(p).body
               if isinstance(node, ast.ClassDef) and _is_main_class(node) and not ast.get_docstring(node)]
    assert missing == []


@pytest.mark.parametrize("path", [p for p in MODULES if "test-case-name" in p.read_text(encoding="utf-8")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_test_case_name_headers_name_tests_that_exist(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    names = first.split("test-case-name:", 1)[1].replace("-*-", "").split(",")
    missing = [n.strip() for n in names if not (ROOT / (n.strip().replace(".", "/") + ".py")).exists()]
    assert missing == []
