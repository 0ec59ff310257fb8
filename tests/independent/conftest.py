"""Simulators for the independent clients: built as `python -m exchanges.<venue>.sim` builds them, on port 0,
with the price walk frozen so that a reply can be compared with the engine's own numbers, and the scheduled
funding moved a day away so that only a test's own `schedule_funding` settles any (an hour boundary during
a run would otherwise add a payment)."""

from __future__ import annotations

import decimal
import time
from collections.abc import Iterator

import pytest

from exchanges.backpack.sim import BackpackSim
from exchanges.hibachi.sim import HibachiSim


@pytest.fixture(autouse=True)
def _decimal_context_kept() -> Iterator[None]:
    """ccxt sets ROUND_HALF_UP (and traps) on the calling thread's decimal context: give it a copy, so that the
    tests run after these keep Python's default context (it once made a later test round differently)."""
    with decimal.localcontext():
        yield


def _quiet(sim: BackpackSim | HibachiSim) -> None:
    for asset in sim.prices.assets():
        sim.prices.freeze(asset)
    for symbol in sim.engine.markets:
        sim.engine.schedule_funding(symbol, int(time.time()) + 86400)


@pytest.fixture
def backpack_sim() -> Iterator[BackpackSim]:
    sim = BackpackSim(seed=7).start()
    _quiet(sim)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def hibachi_sim() -> Iterator[HibachiSim]:
    sim = HibachiSim(seed=7).start()
    _quiet(sim)
    try:
        yield sim
    finally:
        sim.stop()
