"""Backpack websocket feed against the simulator: quotes, reconnection, staleness."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from decimal import Decimal as D

import pytest

from core.clock import FakeClock, SystemClock
from exchanges.backpack.feed import backpack_feed, subscribe_frames
from exchanges.backpack.parse import parse_ws_message
from exchanges.backpack.sim import BackpackSim
from exchanges.feed import PriceFeed
from exchanges.quotes import QuoteBook
from tests.helpers import wait_until

BTC = "BTC_USDC_PERP"


@pytest.fixture
def sim() -> Iterator[BackpackSim]:
    s = BackpackSim(seed=2, publish_interval_s=0.02).start()
    yield s
    s.stop()


def _feed(sim: BackpackSim, clock: object, symbols: list[str]) -> PriceFeed:
    return backpack_feed(sim.ws_url, symbols, clock, reconnect_min_s=0.05, reconnect_max_s=0.2)  # type: ignore[arg-type]


def test_subscribe_frame_matches_the_spec() -> None:
    assert subscribe_frames([BTC]) == [
        '{"method": "SUBSCRIBE", "params": ["bookTicker.BTC_USDC_PERP", "markPrice.BTC_USDC_PERP"]}'
    ]


def test_quotes_arrive_with_bid_ask_mark_and_funding(sim: BackpackSim) -> None:
    feed = _feed(sim, SystemClock(), [BTC, "ETH_USDC_PERP"]).start()
    try:
        wait_until(lambda: all((q := feed.book.get(s)) and q.bid and q.mark for s in (BTC, "ETH_USDC_PERP")),
                   what="quotes for both markets")  # fmt: skip
        quote = feed.book.get(BTC)
        assert quote is not None and quote.source == "feed"
        assert quote.bid < quote.ask  # type: ignore[operator]
        assert quote.funding_rate == D("0.0001")
        assert quote.next_funding_time is not None
        assert feed.age(BTC) is not None and not feed.is_stale(BTC, 5)
    finally:
        feed.stop()


def test_feed_reconnects_and_resumes_after_a_drop(sim: BackpackSim) -> None:
    seen: list[object] = []
    feed = backpack_feed(sim.ws_url, [BTC], SystemClock(), on_quote=seen.append, reconnect_min_s=0.05)
    feed.start()
    try:
        wait_until(lambda: feed.book.get(BTC) is not None, what="first quote")
        assert feed.connections == 1
        assert sim.ws.drop_all() == 1
        wait_until(lambda: feed.connections == 2, what="reconnection")
        before = feed.book.message_count
        wait_until(lambda: feed.book.message_count > before, what="quotes after reconnecting")
        assert sim.ws.connections_accepted == 2
        assert len(seen) == feed.book.message_count  # the callback saw every quote
    finally:
        feed.stop()


def test_frozen_price_makes_the_feed_stale_and_thawing_revives_it(sim: BackpackSim) -> None:
    clock = FakeClock(SystemClock().now())
    feed = PriceFeed("backpack", sim.ws_url, subscribe_frames([BTC]), parse_ws_message, QuoteBook(clock), clock,
                     reconnect_min_s=0.05)  # fmt: skip
    feed.start()
    try:
        wait_until(lambda: feed.book.get(BTC) is not None, what="first quote")
        sim.freeze("BTC")
        # every frame the simulator sent has arrived: from here on, nothing is in flight
        wait_until(lambda: feed.book.message_count == sim.ws.sent, what="in-flight frames")
        assert not feed.is_stale(BTC, 15)
        clock.advance(16)
        assert feed.is_stale(BTC, 15)
        assert feed.age(BTC) == pytest.approx(16)
        sim.freeze("BTC", frozen=False)
        wait_until(lambda: not feed.is_stale(BTC, 15), what="fresh quotes after thawing")
    finally:
        feed.stop()


def test_feed_connects_once_a_venue_that_was_down_comes_up() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago; nothing listens on it now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    feed = backpack_feed(f"ws://127.0.0.1:{port}", [BTC], SystemClock(), reconnect_min_s=0.01, reconnect_max_s=0.05)
    feed.start()
    try:
        wait_until(lambda: feed._thread.is_alive(), what="feed thread")
        assert feed.connections == 0
        assert feed.is_stale(BTC, 1)
        with BackpackSim(seed=4, ws_port=port, publish_interval_s=0.02):
            wait_until(lambda: feed.book.get(BTC) is not None, what="quotes from the late venue")
        assert feed.connections == 1
    finally:
        feed.stop()
    assert not feed._thread.is_alive()
