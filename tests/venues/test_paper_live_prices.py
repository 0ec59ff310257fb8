"""Paper on live prices: the live-priced engine, the live venue follower, and both paper venues through the
real clients, with standalone simulators on 127.0.0.1 posing as the live venues."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.clock import FakeClock, SystemClock
from core.config import ConfigError, PaperConfig, load_settings
from core.domain import Side, Venue
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import DEFAULT_MARKETS, BackpackSim
from exchanges.base import OrderRequest, OrderStatus, OrderType
from exchanges.errors import InvalidOrder, VenueError
from exchanges.hibachi.sim import HibachiSim
from exchanges.paper import PaperVenues
from exchanges.paper_live import LivePriceConfig, follow_backpack
from exchanges.sim.engine import RejectKind, SimRejectError
from exchanges.sim.live_engine import LiveSimEngine
from exchanges.sim.live_prices import LiveQuote
from exchanges.sim.price import PriceSource
from tests.helpers import wait_until
from tests.venues.conftest import hibachi_client
from tests.venues.test_quote_ages import StalledTouchVenue

BTC_BP, BTC_HB = "BTC_USDC_PERP", "BTC/USDT-P"


# ---- the live-priced engine, on a stub book (no network) -------------------------------------------------


class StubBook:
    """A LiveBook whose quotes a test sets by hand."""

    def __init__(self) -> None:
        self.quotes: dict[str, LiveQuote] = {}

    def set(self, symbol: str, bid: str, ask: str, *, mark: str | None = None, funding: str | None = None,
            age_s: float = 0.1) -> None:  # fmt: skip
        self.quotes[symbol] = LiveQuote(
            symbol, D(bid), D(ask), None if mark is None else D(mark), None if funding is None else D(funding),
            age_s, "feed",
        )  # fmt: skip

    def quote(self, symbol: str) -> LiveQuote | None:
        return self.quotes.get(symbol)


def _engine(book: StubBook, clock: FakeClock) -> LiveSimEngine:
    engine = LiveSimEngine(
        "backpack", DEFAULT_MARKETS, PriceSource(clock), clock, maker_fee=D("0.0002"), taker_fee=D("0.0005"),
        live=book, max_age_s=2.0, refusal_code="INVALID_ORDER",
    )  # fmt: skip
    engine.open_account("paper", D(100000))
    return engine


def _market(engine: LiveSimEngine, side: Side, qty: str = "0.01", *, reduce_only: bool = False) -> object:
    return engine.place(
        engine.accounts["paper"], symbol=BTC_BP, side=side, order_type=OrderType.MARKET, quantity=D(qty),
        reduce_only=reduce_only,
    )  # fmt: skip


def test_a_market_buy_fills_at_the_live_ask_and_a_sell_at_the_live_bid() -> None:
    clock, book = FakeClock(), StubBook()
    engine = _engine(book, clock)
    # Far from the random walk's 65000, and a spread of many ticks: a fill near the walk or the mark is wrong.
    book.set(BTC_BP, "91000.5", "91003.2", mark="91001.9")
    buy = _market(engine, Side.LONG)
    assert buy.status is OrderStatus.FILLED and buy.average_price == D("91003.2")  # type: ignore[attr-defined]
    book.set(BTC_BP, "90500.0", "90502.1", mark="90501.0")
    sell = _market(engine, Side.SHORT, reduce_only=True)
    assert sell.average_price == D("90500.0")  # type: ignore[attr-defined]
    # The realized loss is the live round trip: bought at one ask, sold at a later bid.
    assert engine.accounts["paper"].positions[BTC_BP].realized_pnl == (D("90500.0") - D("91003.2")) * D("0.01")


def test_the_mark_is_the_live_mark_or_the_middle_of_the_touch() -> None:
    clock, book = FakeClock(), StubBook()
    engine = _engine(book, clock)
    book.set(BTC_BP, "100.0", "101.0", mark="100.7")
    assert engine.mark(BTC_BP) == D("100.7")
    book.set(BTC_BP, "100.0", "101.0")
    assert engine.mark(BTC_BP) == D("100.5")


def test_a_stale_touch_refuses_the_order_in_the_venues_shape_and_fills_nothing() -> None:
    clock, book = FakeClock(), StubBook()
    engine = _engine(book, clock)
    book.set(BTC_BP, "91000.5", "91003.2", age_s=2.5)  # older than max_age_s = 2
    with pytest.raises(SimRejectError) as refused:
        _market(engine, Side.LONG)
    assert refused.value.kind is RejectKind.INJECTED and refused.value.venue_code == "INVALID_ORDER"
    assert "live price of BTC_USDC_PERP is 2.5 s old (limit 2 s)" in refused.value.message
    account = engine.accounts["paper"]
    assert not account.orders and not account.fills and engine.refused_stale == 1
    book.set(BTC_BP, "91000.5", "91003.2", age_s=1.9)  # fresh again: trades again
    assert _market(engine, Side.LONG).status is OrderStatus.FILLED  # type: ignore[attr-defined]


def test_funding_is_settled_at_the_live_rate() -> None:
    clock, book = FakeClock(), StubBook()
    engine = _engine(book, clock)
    book.set(BTC_BP, "1000", "1000.2", mark="1000.1", funding="-0.00037")
    _market(engine, Side.LONG, "1")
    engine.schedule_funding(BTC_BP, int(clock.now().timestamp()))
    engine.tick()
    (payment,) = engine.accounts["paper"].funding
    # A negative live rate: the long receives (the walk's default +0.0001 would make it pay).
    assert payment.rate == D("-0.00037") and payment.amount == D("0.37003700")


# ---- following a live venue (a simulator posing as it) --------------------------------------------------


@pytest.fixture
def live_bp() -> Iterator[BackpackSim]:
    sim = BackpackSim(seed=11).start()
    yield sim
    sim.stop()


@pytest.fixture
def live_hb() -> Iterator[HibachiSim]:
    sim = HibachiSim(seed=12).start()
    yield sim
    sim.stop()


def _config(bp: BackpackSim, hb: HibachiSim, max_age_s: float = 1.0) -> LivePriceConfig:
    return LivePriceConfig(bp.rest_url, bp.ws_url, hb.data_api_url, hb.ws_market_url, max_age_s)


def _pin(sim: BackpackSim | HibachiSim, asset: str, price: str) -> None:
    """Hold the posing venue's price still at `price` (its feed sends that once, then goes quiet)."""
    sim.freeze(asset)
    sim.prices.set_price(asset, D(price))


def test_the_follower_takes_the_feed_then_keeps_a_quiet_market_fresh_over_rest(
    live_bp: BackpackSim, live_hb: HibachiSim
) -> None:
    config = _config(live_bp, live_hb)
    follower = follow_backpack(config, [BTC_BP, "NOPE_USDC_PERP"], SystemClock()).start()
    try:
        assert follower.symbols == [BTC_BP]  # the live venue does not list NOPE: that paper market is dropped
        _pin(live_bp, "BTC", "70000")
        wait_until(lambda: (q := follower.quote(BTC_BP)) is not None and q.mark == D(70000), 5, "the new mark")
        wait_until(lambda: (q := follower.quote(BTC_BP)) is not None and q.bid == D("69999.9"), 5, "the new touch")
        quote = follower.quote(BTC_BP)
        assert quote is not None and (quote.ask, quote.mark) == (D("70000.1"), D(70000))
        assert quote.funding_rate == D("0.0001")  # Backpack's markPrice stream carries funding
        # The feed is quiet from here on; REST keeps the touch younger than max_age_s.
        reads = follower.rest_reads
        wait_until(lambda: follower.rest_reads >= reads + 2, 5, "REST reads of the quiet market")
        quote = follower.quote(BTC_BP)
        assert quote is not None and quote.age_s < config.max_age_s and quote.bid == D("69999.9")
    finally:
        follower.stop()


def test_a_live_venue_that_lists_none_of_the_markets_fails_the_start(live_bp: BackpackSim, live_hb: HibachiSim) -> None:
    follower = follow_backpack(_config(live_bp, live_hb), ["NOPE_USDC_PERP"], SystemClock())
    with pytest.raises(VenueError, match="live prices unavailable from http://127.0.0.1"):
        follower.start()


# ---- both paper venues through the real clients ---------------------------------------------------------


@pytest.fixture
def paper(live_bp: BackpackSim, live_hb: HibachiSim) -> Iterator[PaperVenues]:
    settings = PaperConfig(
        prices="live", live_backpack_rest_url=live_bp.rest_url, live_backpack_ws_url=live_bp.ws_url,
        live_hibachi_data_url=live_hb.data_api_url, live_hibachi_ws_url=live_hb.ws_market_url, live_max_age_s=D(1),
    )  # fmt: skip
    venues = PaperVenues.start(SystemClock(), seed=3, paper=settings)
    yield venues
    venues.stop()


def _bp_client(venues: PaperVenues) -> BackpackClient:
    sim = venues.backpack
    return BackpackClient(sim.rest_url, sim.api_key, sim.api_secret, clock=SystemClock(), read_timeout_s=2.0,
                          requests_per_s=200, backoff_s=0.01)  # fmt: skip


def _buy(symbol: str, qty: str, cid: str, side: Side = Side.LONG) -> OrderRequest:
    return OrderRequest(cid, symbol, side, D(qty))


def test_each_paper_venue_fills_at_its_own_live_venues_touch(
    paper: PaperVenues, live_bp: BackpackSim, live_hb: HibachiSim
) -> None:
    assert paper.price_status()["source"] == "live"
    bp, hb = _bp_client(paper), hibachi_client(paper.hibachi)
    try:
        _pin(live_bp, "BTC", "70000")  # Backpack's touch: 69999.9 / 70000.1
        _pin(live_hb, "BTC", "70250")  # Hibachi's: 70249.9 / 70250.1
        wait_until(lambda: paper.backpack.engine.book(BTC_BP)[1][0][0] == D("70000.1"), 5, "Backpack's touch")
        wait_until(lambda: paper.hibachi.engine.book(BTC_HB)[0][0][0] == D("70249.9"), 5, "Hibachi's touch")
        assert bp.place_order(_buy(BTC_BP, "0.01", "101")).average_price == D("70000.1")
        assert hb.place_order(_buy(BTC_HB, "0.01", "h-101", Side.SHORT)).average_price == D("70249.9")
        # The live venues move; the next paper fills follow each one's new touch.
        _pin(live_bp, "BTC", "68000")
        _pin(live_hb, "BTC", "72000")
        wait_until(lambda: paper.backpack.engine.book(BTC_BP)[0][0][0] == D("67999.9"), 5, "Backpack's move")
        wait_until(lambda: paper.hibachi.engine.book(BTC_HB)[1][0][0] == D("72000.1"), 5, "Hibachi's move")
        sell = OrderRequest("102", BTC_BP, Side.SHORT, D("0.01"), reduce_only=True)
        assert bp.place_order(sell).average_price == D("67999.9")
        assert hb.place_order(_buy(BTC_HB, "0.01", "h-102")).average_price == D("72000.1")
        # The paper venues' own feeds and REST now show the live prices too (what the engine's actors read).
        assert bp.quote(BTC_BP).bid == D("67999.9") and hb.quote(BTC_HB).ask == D("72000.1")
        assert not live_bp.account().orders and not live_hb.account().orders  # nothing reached the "live" venues
    finally:
        bp.close()
        hb.close()


def test_a_paper_order_on_a_stale_live_touch_is_refused_as_invalid_and_nothing_fills(
    paper: PaperVenues, live_bp: BackpackSim
) -> None:
    bp, hb = _bp_client(paper), hibachi_client(paper.hibachi)
    try:
        # The live Backpack goes quiet on the websocket and answers 503 on REST: its touch only ages.
        live_bp.freeze("BTC")
        live_bp.engine.faults.fail_requests(100_000, 503)
        follower = paper.venues[Venue.BACKPACK].live
        assert follower is not None
        wait_until(lambda: (q := follower.quote(BTC_BP)) is not None and q.age_s > 1.0, 5, "a stale touch")
        with pytest.raises(InvalidOrder, match="live price of BTC_USDC_PERP is .* old"):
            bp.place_order(_buy(BTC_BP, "0.01", "201"))
        assert not paper.backpack.account().orders and not paper.backpack.account().positions
        status = paper.price_status()
        assert status["backpack"]["age_s"][BTC_BP] > 1.0  # status shows how old it is
        # Hibachi's live venue is still up: its paper venue still trades.
        assert hb.place_order(_buy(BTC_HB, "0.01", "h-201")).status is OrderStatus.FILLED
    finally:
        bp.close()
        hb.close()


def test_a_touch_that_stalls_while_marks_tick_on_ages_is_read_over_rest_and_refuses_orders(
    live_bp: BackpackSim, live_hb: HibachiSim
) -> None:
    # The live Backpack's BTC bid/ask stream sends one touch and stalls; its mark stream ticks on every 20 ms.
    with StalledTouchVenue(BTC_BP, ("60000", "60000.2")) as stalled:
        _pin(live_bp, "BTC", "65000")  # its REST touch: 64999.9 / 65000.1
        settings = PaperConfig(
            prices="live", live_backpack_rest_url=live_bp.rest_url, live_backpack_ws_url=stalled.url,
            live_hibachi_data_url=live_hb.data_api_url, live_hibachi_ws_url=live_hb.ws_market_url,
            live_max_age_s=D(1),
        )  # fmt: skip
        venues = PaperVenues.start(SystemClock(), seed=4, paper=settings)
        bp = _bp_client(venues)
        try:
            follower = venues.venues[Venue.BACKPACK].live
            assert follower is not None
            live_bp.engine.faults.fail_requests(100_000, 503)  # REST reads now fail: the touch can only age
            wait_until(lambda: (q := follower.quote(BTC_BP)) is not None and q.bid == D(60000), 5, "the feed's touch")
            first = follower.quote(BTC_BP)
            assert first is not None and first.mark is not None
            errors = follower.rest_errors
            # Only BTC's touch is quiet (every other market's ticks), so a failed REST read is one of BTC.
            wait_until(lambda: follower.rest_errors > errors, 5, "a REST read of the quiet touch")
            wait_until(lambda: (q := follower.quote(BTC_BP)) is not None and q.age_s > 1.0, 5, "a stale touch")
            with pytest.raises(InvalidOrder, match=r"live price of BTC_USDC_PERP is \d+\.\d s old \(limit 1 s\)"):
                bp.place_order(_buy(BTC_BP, "0.01", "301"))
            assert not venues.backpack.account().orders and not venues.backpack.account().positions
            stale = follower.quote(BTC_BP)
            # Marks kept arriving all along: the mark moved on while the bid/ask aged.
            assert stale is not None and stale.mark is not None and stale.mark > first.mark
            assert stale.bid == D(60000) and stalled.touches_sent == 1
            assert venues.price_status()["backpack"]["age_s"][BTC_BP] > 1.0
            # The live REST answers again: its touch replaces the stalled one and the paper venue trades on it.
            live_bp.engine.faults.clear()
            wait_until(lambda: (q := follower.quote(BTC_BP)) is not None and q.source == "rest", 5, "a REST touch")
            assert bp.place_order(_buy(BTC_BP, "0.01", "302")).average_price == D("65000.1")
        finally:
            bp.close()
            venues.stop()


# ---- configuration --------------------------------------------------------------------------------------


def test_simulated_prices_stay_the_default_and_status_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.toml
    settings = load_settings(None, {})
    assert settings.paper.prices == "simulated" and LivePriceConfig.from_paper(settings.paper) is None
    venues = PaperVenues.start(SystemClock(), paper=settings.paper)
    try:
        assert venues.price_status() == {"source": "simulated"} and venues.venues[Venue.BACKPACK].live is None
    finally:
        venues.stop()


def test_live_price_settings_are_checked_with_the_key_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    bad = {"paper": {"prices": "live", "live_backpack_ws_url": "https://ws.example", "live_max_age_s": 0}}
    with pytest.raises(ConfigError) as error:
        load_settings(None, bad)
    assert "paper.live_backpack_ws_url = https://ws.example must be a ws or wss URL with a host" in error.value.lines
    assert "paper.live_max_age_s = 0 must be > 0" in error.value.lines
    with pytest.raises(ConfigError, match="paper.prices"):
        load_settings(None, {"paper": {"prices": "random"}})
    live = LivePriceConfig.from_paper(load_settings(None, {"paper": {"prices": "live", "live_max_age_s": "4"}}).paper)
    assert live is not None and (live.backpack_ws_url, live.max_age_s) == ("wss://ws.backpack.exchange", 4.0)
