"""The shared part of each venue's `simulate`: on live prices, only the markets the real venue lists, and a
follower that never outlives a simulator that failed to build."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from pydantic import SecretStr

from core.clock import FakeClock
from core.config import PaperConfig
from exchanges.paper_live import LivePriceConfig
from exchanges.registry import PaperStart
from exchanges.venue_parts import secret_text, simulate_paper


class _Follower:
    """Stands in for LiveVenuePrices: lists only `listed`, and records its start and stop."""

    def __init__(self, listed: list[str]) -> None:
        self.symbols = listed
        self.asked: list[str] = []
        self.running = False

    def start(self) -> _Follower:
        self.running = True
        return self

    def stop(self) -> None:
        self.running = False


def _start(prices: str) -> PaperStart:
    return PaperStart(None, FakeClock(), 0, D(1000), PaperConfig(prices=prices))  # type: ignore[arg-type]


def _run(prices: str, follower: _Follower, build: Any) -> Any:
    def follow(config: LivePriceConfig, symbols: list[str], clock: Any) -> Any:
        follower.asked = symbols
        return follower

    return simulate_paper(
        _start(prices), build, follow=follow, refusal_code=4, catalogue=[("A", 1), ("B", 2)],
        symbol_of=lambda entry: entry[0], catalogue_option="books",
    )  # fmt: skip


def test_simulated_prices_build_the_simulator_alone() -> None:
    built: list[dict[str, Any]] = []
    follower = _Follower([])
    venue = _run("simulated", follower, lambda **options: built.append(options) or "sim")
    assert (venue.sim, venue.live, built) == ("sim", None, [{"publish_interval_s": 0.05}])
    assert follower.asked == [] and not follower.running


def test_live_prices_keep_only_the_listed_markets_and_the_follower() -> None:
    built: list[dict[str, Any]] = []
    follower = _Follower(["B"])
    venue = _run("live", follower, lambda **options: built.append(options) or "sim")
    assert follower.asked == ["A", "B"] and follower.running
    assert venue.sim == "sim" and venue.live is follower
    [options] = built
    assert options["books"] == [("B", 2)]
    assert options["engine_factory"].keywords["live"] is follower
    assert options["engine_factory"].keywords["refusal_code"] == 4


def test_a_simulator_that_fails_to_build_stops_its_follower() -> None:
    def build(**options: Any) -> Any:
        raise OSError("no port")

    follower = _Follower(["A"])
    with pytest.raises(OSError, match="no port"):
        _run("live", follower, build)
    assert not follower.running


def test_a_secret_reads_as_text_and_none_stays_none() -> None:
    assert (secret_text(SecretStr("k3y")), secret_text(None)) == ("k3y", None)
