"""Hibachi market websocket feed against the simulator: quotes, reconnection, staleness."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect

from core.clock import FakeClock, SystemClock
from exchanges.feed import PriceFeed
from exchanges.hibachi.feed import hibachi_feed, subscribe_frames
from exchanges.hibachi.sim import HibachiSim
from tests.helpers import wait_until

BTC, ETH = "BTC/USDT-P", "ETH/USDT-P"


@pytest.fixture
def sim() -> Iterator[HibachiSim]:
    s = HibachiSim(seed=2, publish_interval_s=0.02).start()
    yield s
    s.stop()


def _feed(sim: HibachiSim, clock: object, symbols: list[str], **kw: object) -> PriceFeed:
    return hibachi_feed(sim.ws_market_url, symbols, clock, reconnect_min_s=0.05, reconnect_max_s=0.2, **kw)  # type: ignore[arg-type]


def test_subscribe_frame_matches_the_spec() -> None:
    (frame,) = subscribe_frames([BTC])
    assert json.loads(frame) == {
        "method": "subscribe",
        "parameters": {
            "subscriptions": [{"symbol": BTC, "topic": "ask_bid_price"}, {"symbol": BTC, "topic": "mark_price"}]
        },
    }


def test_quotes_arrive_with_bid_ask_and_mark(sim: HibachiSim) -> None:
    feed = _feed(sim, SystemClock(), [BTC, ETH]).start()
    try:
        wait_until(lambda: all((q := feed.book.get(s)) and q.bid and q.mark for s in (BTC, ETH)),
                   what="quotes for both contracts")  # fmt: skip
        quote = feed.book.get(BTC)
        assert quote is not None and quote.source == "feed"
        assert quote.bid < quote.mark < quote.ask  # type: ignore[operator]
        assert not feed.is_stale(BTC, 5)
    finally:
        feed.stop()


def test_pushes_have_the_venue_shape(sim: HibachiSim) -> None:
    with connect(sim.ws_market_url) as ws:
        ws.send(subscribe_frames([BTC])[0])
        topics = {}
        while len(topics) < 2:
            msg = json.loads(ws.recv(timeout=5))
            topics[msg["topic"]] = msg
    assert set(topics["ask_bid_price"]["data"]) == {"bidPrice", "bidSize", "askPrice", "askSize"}
    assert set(topics["mark_price"]["data"]) == {"markPrice"}
    assert topics["mark_price"]["symbol"] == BTC


def test_feed_reconnects_and_resubscribes_after_a_drop(sim: HibachiSim) -> None:
    seen: list[object] = []
    feed = _feed(sim, SystemClock(), [BTC], on_quote=seen.append).start()
    try:
        wait_until(lambda: feed.book.get(BTC) is not None, what="first quote")
        assert sim.ws.drop_all() == 1
        wait_until(lambda: feed.connections == 2, what="reconnection")
        before = feed.book.message_count
        wait_until(lambda: feed.book.message_count > before, what="quotes after resubscribing")
        assert sim.ws.subscribers(f"mark_price:{BTC}") == 1
        assert len(seen) == feed.book.message_count
    finally:
        feed.stop()


def test_frozen_price_makes_the_feed_stale_and_thawing_revives_it(sim: HibachiSim) -> None:
    clock = FakeClock(SystemClock().now())
    feed = _feed(sim, clock, [BTC]).start()
    try:
        wait_until(lambda: feed.book.get(BTC) is not None, what="first quote")
        sim.freeze("BTC")
        wait_until(lambda: feed.book.message_count == sim.ws.sent, what="in-flight frames")
        assert not feed.is_stale(BTC, 15)
        clock.advance(16)
        assert feed.is_stale(BTC, 15)
        sim.freeze("BTC", frozen=False)
        wait_until(lambda: not feed.is_stale(BTC, 15), what="fresh quotes after thawing")
    finally:
        feed.stop()


def test_feed_connects_once_a_venue_that_was_down_comes_up() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    feed = hibachi_feed(f"ws://127.0.0.1:{port}/ws/market", [BTC], SystemClock(), reconnect_min_s=0.01,
                        reconnect_max_s=0.05).start()  # fmt: skip
    try:
        assert feed.is_stale(BTC, 1)
        with HibachiSim(seed=4, ws_port=port, publish_interval_s=0.02):
            wait_until(lambda: feed.book.get(BTC) is not None, what="quotes from the late venue")
        assert feed.connections >= 1
    finally:
        feed.stop()


def test_wrong_path_is_refused(sim: HibachiSim) -> None:
    wrong = sim.ws_market_url.replace("/ws/market", "/ws/other")
    feed = hibachi_feed(wrong, [BTC], SystemClock(), reconnect_min_s=0.05, reconnect_max_s=0.1).start()
    try:
        wait_until(lambda: sim.ws.connections_accepted == 0 and feed.connections >= 1, what="a refused session")
        assert feed.book.get(BTC) is None
    finally:
        feed.stop()
