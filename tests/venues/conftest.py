"""Venue fixtures: a real simulator on 127.0.0.1 (port 0) and the real client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.clock import SystemClock
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim


@pytest.fixture
def bp_sim() -> Iterator[BackpackSim]:
    sim = BackpackSim(seed=7).start()
    yield sim
    sim.stop()


@pytest.fixture
def bp(bp_sim: BackpackSim) -> Iterator[BackpackClient]:
    client = BackpackClient(
        bp_sim.rest_url, bp_sim.api_key, bp_sim.api_secret, clock=SystemClock(), read_timeout_s=1.0, window_ms=1000,
        requests_per_s=200, backoff_s=0.01,
    )  # fmt: skip
    yield client
    client.close()
