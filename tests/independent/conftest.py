"""Simulators for the independent clients: built as `python -m exchanges.<venue>.sim` builds them, on port 0,
with the price walk frozen so that a reply can be compared with the engine's own numbers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchanges.backpack.sim import BackpackSim
from exchanges.hibachi.sim import HibachiSim


@pytest.fixture
def backpack_sim() -> Iterator[BackpackSim]:
    sim = BackpackSim(seed=7).start()
    for asset in sim.prices.assets():
        sim.prices.freeze(asset)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def hibachi_sim() -> Iterator[HibachiSim]:
    sim = HibachiSim(seed=7).start()
    for asset in sim.prices.assets():
        sim.prices.freeze(asset)
    try:
        yield sim
    finally:
        sim.stop()
