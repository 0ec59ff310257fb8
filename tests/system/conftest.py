"""The whole runtime in-process: paper venues on loopback, real actors, a real database, short durations."""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.runtime import Runtime
from core.config import Settings, load_settings
from core.domain import PairState
from storage.records import PairRecord
from tests.helpers import wait_until
from tests.postgres import postgres_server

FAST: dict[str, Any] = {
    "trading": {"min_duration_hours": "0.0003", "max_duration_hours": "0.0004", "cooldown_min_s": 0,
                "cooldown_max_s": 0, "min_leverage": 2, "max_leverage": 3},
    "monitor": {"interval_s": "0.2", "feed_stale_after_s": 5},
    "timings": {"tick_s": "0.05", "leg_retry_min_s": "0.05", "leg_retry_max_s": "0.2", "restart_backoff_min_s": "0.05",
               "restart_backoff_max_s": "0.2", "shutdown_timeout_s": 5},
}  # fmt: skip


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class Running:
    """An runtime whose main loop runs in a thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stop = threading.Event()
        self.thread = threading.Thread(target=runtime.run, args=(self.stop, 0.02), name="test-main-loop", daemon=True)

    def go(self) -> Running:
        self.thread.start()
        return self

    def halt(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(10)

    @property
    def repo(self) -> Any:
        return self.runtime.repo

    def pairs(self, *states: PairState) -> list[PairRecord]:
        return self.repo.list_pairs(list(states) if states else None)

    def wait_pair(self, *states: PairState, timeout_s: float = 20.0, what: str = "") -> PairRecord:
        wait_until(lambda: bool(self.pairs(*states)), timeout_s, what or f"a pair in {states}")
        return self.pairs(*states)[0]

    def kinds(self) -> list[str]:
        return [e.kind for e in reversed(self.repo.list_events(limit=1000))]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory (ipc socket paths are limited to ~107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="pf-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def engine_factory(short_dir: Path) -> Iterator[Callable[..., Running]]:
    made: list[Running] = []

    def make(overrides: dict[str, Any] | None = None, *, seed: int = 1, start_loop: bool = True,
             setup: Callable[[Runtime], None] | None = None) -> Running:  # fmt: skip
        settings: Settings = load_settings(None, _merge(_merge(FAST, {"data_dir": str(short_dir)}), overrides or {}))
        runtime = Runtime(settings, rng=random.Random(seed)).start()
        running = Running(runtime)
        made.append(running)
        if setup is not None:
            setup(runtime)
        return running.go() if start_loop else running

    yield make
    for running in made:
        running.halt()
        running.runtime.shutdown()


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet_database(request: pytest.FixtureRequest, short_dir: Path) -> Iterator[str]:
    """A fleet's database URL, shared by every supervisor of a test: a SQLite file, or a fresh PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{short_dir / 'fleet.db'}"
        return
    with postgres_server() as url:
        yield url
