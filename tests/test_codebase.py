"""Whole-tree rules: ruff is clean, and the pure layers import no I/O library."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IO_LIBRARIES = {"requests", "websockets", "pynng", "pykka", "sqlalchemy"}


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    proc = subprocess.run([ruff, "check", "--quiet", str(ROOT)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _pure_modules() -> list[Path]:
    pure = list((ROOT / "core").glob("*.py"))
    for venue in (ROOT / "exchanges").iterdir():
        pure.extend(p for p in (venue / "signing.py", venue / "parse.py") if p.is_file())
    return pure


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_layers_import_no_io_library(path: Path) -> None:
    assert not _imported_roots(path) & IO_LIBRARIES


# Writes are the PersistenceWriter's alone: every other production module reads through storage.queries and
# writes by sending the writer a message. Tests, benchmarks and the storage package itself are exempt.
WRITES_MAY_BE_IMPORTED_BY = {Path("actors/writer.py")}
WRITES_EXEMPT_DIRECTORIES = {"tests", "bench", "storage", ".venv"}


def _imports_storage_writes(path: Path) -> bool:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(alias.name == "storage.writes" for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            if node.module == "storage.writes":
                return True
            if node.module == "storage" and any(alias.name == "writes" for alias in node.names):
                return True
    return False


def _production_modules() -> list[Path]:
    return [
        p
        for p in ROOT.rglob("*.py")
        if p.relative_to(ROOT).parts[0] not in WRITES_EXEMPT_DIRECTORIES
        and not any(part.startswith(".") for part in p.relative_to(ROOT).parts)
    ]


def test_only_the_writer_imports_storage_writes() -> None:
    importers = {p.relative_to(ROOT) for p in _production_modules() if _imports_storage_writes(p)}
    assert importers <= WRITES_MAY_BE_IMPORTED_BY, f"only actors/writer.py may import storage.writes: {importers}"
    assert importers == WRITES_MAY_BE_IMPORTED_BY  # the rule still names the module that does


def test_the_writes_rule_catches_every_import_form(tmp_path: Path) -> None:
    forms = ["import storage.writes", "from storage.writes import Writes", "from storage import writes"]
    for i, form in enumerate(forms):
        module = tmp_path / f"m{i}.py"
        module.write_text(form + "\n")
        assert _imports_storage_writes(module), form
    clean = tmp_path / "clean.py"
    clean.write_text("from storage.queries import Queries\nimport storage.records\n")
    assert not _imports_storage_writes(clean)


# The venue-neutral core: no code there names a real venue (comments and docstrings may); a venue's specifics sit
# under exchanges/ behind the registry. core/config.py (its config sections) and core/domain.py (the Venue
# constants) are the two documented exceptions.
NEUTRAL_DIRECTORIES = ("actors", "storage", "control", "reports", "core")
NEUTRAL_EXCEPTIONS = {Path("core/config.py"), Path("core/domain.py")}
VENUE_NAMES = ("backpack", "hibachi")


def _venue_names_in_code(source: str) -> list[str]:
    """Lines whose code (not a comment, not a docstring) names a venue."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value.lower()
        elif isinstance(node, ast.Name):
            text = node.id.lower()
        elif isinstance(node, ast.Attribute):
            text = node.attr.lower()
        elif isinstance(node, ast.alias):
            text = node.name.lower()
        elif isinstance(node, ast.ImportFrom) and node.module:
            text = node.module.lower()
        else:
            continue
        if any(name in text for name in VENUE_NAMES):
            found.append(f"line {getattr(node, 'lineno', '?')}: {text!r}")
    return found


def _neutral_modules() -> list[Path]:
    return [
        p
        for d in NEUTRAL_DIRECTORIES
        for p in (ROOT / d).rglob("*.py")
        if p.relative_to(ROOT) not in NEUTRAL_EXCEPTIONS
    ]


@pytest.mark.parametrize("path", _neutral_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_names_no_venue(path: Path) -> None:
    assert _venue_names_in_code(path.read_text()) == []


def test_the_venue_rule_sees_code_but_not_comments() -> None:
    source = '"""Backpack docs."""\n# hibachi comment\nx = "BTC_USDC_PERP"\nfrom exchanges.backpack.client import C\n'
    assert _venue_names_in_code(source) == ["line 4: 'exchanges.backpack.client'"]
    assert _venue_names_in_code("v = settings.hibachi\n") == ["line 1: 'hibachi'"]
