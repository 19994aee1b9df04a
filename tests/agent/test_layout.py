"""The agent package's layout (docs/agent.md, "Layout"), read from its source: module sizes and
which modules may import what. The imports are read with ``ast``, so Windows-only modules are
checked on any OS without being imported."""

import ast
from pathlib import Path

import pytest

import lunaris_agent

PACKAGE = Path(lunaris_agent.__file__).parent
MAX_LINES = 400

PYWIN32 = ("pywintypes", "servicemanager", "win32api", "win32event", "win32service")
"""pywin32's modules (``win32serviceutil`` and the rest start with ``win32``)."""

PURE_WINGET = (
    *("columns", "hresults", "installed", "lines", "outcome", "parse", "tables"),
    *("report", "results", "text", "width", "words"),
)
"""Reading what winget prints: functions of text and data, no I/O."""
PURE_IMPORTS = (
    *("__future__", "bisect", "collections", "dataclasses", "itertools", "re", "typing"),
    *("unicodedata", "regex", "pydantic", "lunaris_protocol"),
)

PLATFORM_NEUTRAL = (
    *("runtime.agent", "runtime.contact", "runtime.exits", "runtime.inventory"),
    "runtime.registration",
)
"""The agent's steps and loops take their scanner, inventory and installer as arguments."""


def modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(PACKAGE).with_suffix("").parts): path
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes)


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_is_over_400_lines(module: str) -> None:
    lines = len(modules()[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by job"


def test_only_the_service_modules_import_pywin32() -> None:
    importers = {
        module
        for module, path in modules().items()
        if any(within(name, PYWIN32) or name.startswith("win32") for name in imported(path))
    }
    assert importers == {"windows.service", "windows.service_control", "windows.user_sessions"}


@pytest.mark.parametrize("module", PURE_WINGET)
def test_reading_winget_output_does_no_io(module: str) -> None:
    allowed = (*PURE_IMPORTS, *(f"lunaris_agent.winget.{pure}" for pure in PURE_WINGET))
    impure = {
        name
        for name in imported(modules()[f"winget.{module}"])
        if not within(name, allowed) and name != "lunaris_agent.winget"
    }
    assert impure == set()


@pytest.mark.parametrize("module", PLATFORM_NEUTRAL)
def test_the_runtime_takes_winget_and_windows_as_arguments(module: str) -> None:
    reached = {
        name
        for name in imported(modules()[module])
        if within(name, ("lunaris_agent.windows", "lunaris_agent.winget.run"))
        or within(name, ("lunaris_agent.winget.upgrade", "winreg"))
    }
    assert reached == set()


def test_the_agent_imports_nothing_of_the_server() -> None:
    assert not any(
        within(name, ("lunaris_server",)) for path in modules().values() for name in imported(path)
    )
