"""The layers of doc/architecture.md hold, the sans-IO core imports nothing from twisted.internet, and the package type-checks."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_LAYERS = ("jute", "java", "core", "membership", "config", "pipeline", "serving", "storage", "election",
               "quorum", "ensemble", "metrics", "tls", "views", "views/admin")
#: The sans-IO halves of packages whose other half is a Twisted adapter.
PURE_MODULES = (
    "client/session.py", "client/hosts.py", "client/states.py", "client/watches.py",
    "client/effects.py", "client/auth.py", "client/errors.py", "client/rwsearch.py", "client/inflight.py",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", PURE_LAYERS)
def test_pure_layers_do_not_import_twisted_internet(layer: str) -> None:
    modules = sorted((ROOT / "zabd" / layer).glob("*.py"))
    assert modules, f"no modules found in zabd/{layer}"
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if n.startswith("twisted.internet"))
        for path in modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_halves_do_not_import_twisted_internet(module: str) -> None:
    imported = _imports(ROOT / "zabd" / module)
    assert sorted(n for n in imported if n.startswith("twisted.internet")) == []


def test_import_contracts_hold() -> None:
    """pyproject.toml's import-linter contracts: layers only downward, and no module cycle at all."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command())", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_is_mypy_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "zabd", "twisted/plugins"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
