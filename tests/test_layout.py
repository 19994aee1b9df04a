"""The suite's own layout: helpers live in plain modules (tests/support.py, tests/databases.py,
tests/browser.py, tests/<area>/helpers.py), conftest files hold fixtures and hooks only, and
nothing imports a conftest. pytest loads each conftest itself; a module that imports one gets a
second copy of it, and helpers hidden among fixtures are hard to find."""

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def python_files() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def conftests() -> list[Path]:
    return sorted(TESTS.rglob("conftest.py"))


def imported(tree: ast.Module) -> list[str]:
    """Every module the file imports, at its top or inside a function (``from . import x`` and
    ``from .conftest import x`` are read relative to the file's package)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names += [f"{module}.{alias.name}" if module else alias.name for alias in node.names]
            names.append(module)
    return names


def is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr == "fixture"


def test_there_are_files_to_check() -> None:
    assert len(python_files()) > 50
    assert TESTS / "conftest.py" in conftests()


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(TESTS)))
def test_no_module_imports_a_conftest(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    conftest_imports = [name for name in imported(tree) if "conftest" in name.split(".")]
    assert conftest_imports == [], "import helpers from a plain module, not from a conftest"


@pytest.mark.parametrize("path", conftests(), ids=lambda p: str(p.relative_to(TESTS)))
def test_conftest_files_hold_fixtures_and_hooks_only(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    other = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            node.name.startswith("pytest_") or any(map(is_fixture, node.decorator_list))
        ):
            continue
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [
            "pytest_plugins"
        ]:
            continue
        other.append(f"line {node.lineno}: {ast.unparse(node).splitlines()[0]}")
    assert other == [], "helpers belong in a plain module (tests/<area>/helpers.py)"
