"""Shared fixtures: a clean environment, a fake clock, a fresh database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from core.clock import FakeClock
from storage.db import open_database
from storage.repository import Repository

# The same examples on every run: CI must not pass or fail by the draw (a failure found once is kept as an
# explicit regression test instead).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")


@pytest.fixture(autouse=True)
def _clean_app_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No APP__ variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("APP__"):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo(tmp_path: Path, clock: FakeClock) -> Iterator[Repository]:
    engine = open_database(f"sqlite:///{tmp_path / 'test.db'}", clock)
    yield Repository(engine, clock)
    engine.dispose()
