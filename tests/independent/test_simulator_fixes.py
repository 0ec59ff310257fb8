"""Regression tests for simulator deviations from the venues' definitions that an independent client found."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from core.clock import FakeClock
from exchanges.hibachi.sim import HibachiSim

START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def hibachi_at_fraction() -> Iterator[tuple[HibachiSim, int]]:
    """A Hibachi simulator whose BTC funding settled a quarter second into epoch second S (returned)."""
    clock = FakeClock(START)
    sim = HibachiSim(clock=clock, seed=3).start()
    try:
        second = int(START.timestamp())
        sim.engine.schedule_funding("BTC/USDT-P", second)
        clock.advance(0.25)
        with sim.engine.lock:
            sim.engine.tick()
        [settled] = [r for r in sim.engine.funding_log if r.symbol == "BTC/USDT-P"]
        assert settled.ts == START + timedelta(seconds=0.25)
        yield sim, second
    finally:
        sim.stop()


def _funding_rates(sim: HibachiSim, **query: str) -> list[dict[str, object]]:
    reply = requests.get(f"{sim.data_api_url}/market/data/funding-rates", params={"symbol": "BTC/USDT-P", **query},
                         timeout=5)  # fmt: skip
    assert reply.status_code == 200, reply.text
    rows: list[dict[str, object]] = reply.json()["data"]
    return rows


def test_funding_rates_default_end_is_the_server_time_not_its_whole_second(
    hibachi_at_fraction: tuple[HibachiSim, int],
) -> None:
    # ccxt's fetchFundingRateHistory sends no endTime: a settlement earlier in the current second was missing.
    sim, second = hibachi_at_fraction
    [row] = _funding_rates(sim)
    assert row["fundingTimestamp"] == second
    assert Decimal(str(row["fundingRate"])) == sim.engine.markets["BTC/USDT-P"].funding_rate


def test_funding_rates_window_takes_fractional_seconds(hibachi_at_fraction: tuple[HibachiSim, int]) -> None:
    # The spec: startTime/endTime are "Unix timestamp in seconds (with optional fractional part)".
    sim, second = hibachi_at_fraction
    assert len(_funding_rates(sim, startTime=f"{second}.1", endTime=f"{second}.3")) == 1
    assert _funding_rates(sim, startTime=f"{second}.3", endTime=f"{second}.9") == []
    assert _funding_rates(sim, startTime=f"{second - 10}", endTime=f"{second}.2") == []
