"""Shared fixtures: a clean environment, a fake clock, a fresh database."""

from __future__ import annotations

import decimal
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from core.clock import FakeClock
from storage.db import open_database
from storage.queries import Queries
from storage.writes import Writes

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


@pytest.fixture(autouse=True)
def _decimal_context_unchanged() -> Iterator[None]:
    """A test leaves the thread's decimal context as Python's default: money math elsewhere rounds by it (a
    third-party SDK once left ROUND_HALF_UP behind, and a later test rounded differently)."""
    yield
    context = decimal.getcontext()
    assert (context.prec, context.rounding) == (28, decimal.ROUND_HALF_EVEN), (
        f"the test changed the decimal context: prec {context.prec}, rounding {context.rounding}"
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo(tmp_path: Path, clock: FakeClock) -> Iterator[Queries]:
    engine = open_database(f"sqlite:///{tmp_path / 'test.db'}", clock)
    yield Queries(engine)
    engine.dispose()


@pytest.fixture
def writes(repo: Queries, clock: FakeClock) -> Writes:
    """The writes on `repo`'s database (what the PersistenceWriter uses)."""
    return Writes(repo.engine, clock)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The CLI installs its own log handler on a stream that ends with the test: put the old ones back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
