"""The type check: mypy over every package [tool.mypy] in pyproject.toml names, with no error."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean() -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    if mypy is None:
        pytest.fail("mypy is not installed: pip install -e '.[test]'")
    # From the root, so that mypy reads pyproject.toml's file list and settings (its cache, .mypy_cache, is ignored).
    proc = subprocess.run([mypy], cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(proc.stdout + proc.stderr, pytrace=False)
