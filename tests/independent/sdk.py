"""Import a third-party exchange SDK: a skip on a developer's machine without it, a failure in CI."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str) -> ModuleType:
    """The SDK's module; CI installs the `test` extra, so there a missing SDK fails the run instead of skipping."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"{module} is in the `test` extra (pip install -e '.[test]')")
