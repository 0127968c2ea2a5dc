"""The test suite's own layout: a test module or conftest imports what it shares
with others from `tests.helpers` only, never from another test module or a
conftest, so moving or deleting a test cannot break another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """The modules `path` imports (absolute names), with their line numbers."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                package = path.relative_to(TESTS.parent).parent.parts
                base = ".".join(package[: len(package) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from tests import test_x` imports the module test_x itself
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def is_test_or_conftest(path: Path) -> bool:
    return path.name.startswith("test_") or path.name == "conftest.py"


def forbidden(module: str) -> bool:
    """An import of `tests` that is not of tests.helpers (or of a name in it)."""
    parts = module.split(".")
    if parts[0] != "tests" or len(parts) == 1:
        return False
    return parts[1] != "helpers"


def test_test_modules_import_shared_code_from_tests_helpers_only() -> None:
    modules = [p for p in TESTS.rglob("*.py") if is_test_or_conftest(p)]
    assert len(modules) > 50  # the walk found the suite
    wrong = [
        f"{path.relative_to(TESTS.parent)}:{line}: imports {module}"
        for path in modules
        for line, module in imported_modules(path)
        if forbidden(module)
    ]
    assert wrong == [], "\n".join(wrong)


def test_helpers_import_no_test_module_nor_conftest() -> None:
    wrong = [
        f"{path.relative_to(TESTS.parent)}:{line}: imports {module}"
        for path in (TESTS / "helpers").rglob("*.py")
        for line, module in imported_modules(path)
        if forbidden(module)
    ]
    assert wrong == [], "\n".join(wrong)


def test_the_check_sees_what_it_forbids() -> None:
    assert forbidden("tests.conftest")
    assert forbidden("tests.hooks.test_ifbyphone_hook")
    assert forbidden("tests.fuzz.conftest")
    assert not forbidden("tests.helpers.settings")
    assert not forbidden("app.models")
