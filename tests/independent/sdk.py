"""Import a third-party exchange SDK, with a message that says how to get it when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str) -> ModuleType:
    """The SDK's module. It is in the `test` extra: a missing one fails the run (never a skip hiding the check)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is missing: pip install -e '.[test]' installs it") from exc
