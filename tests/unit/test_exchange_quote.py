"""Which quote the venue actor serves: the feed's only while both its bid/ask and its mark are fresh."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal as D

from actors.exchange import ExchangeActor
from actors.messages import GetQuote
from core.clock import FakeClock
from core.domain import Venue
from exchanges.base import Quote
from exchanges.quotes import QuoteBook, QuoteUpdate

START = datetime(2026, 12, 1, tzinfo=UTC)
SYMBOL = "BTC_USDC_PERP"


class _Feed:
    """What the actor reads of a PriceFeed, over a real QuoteBook on a fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.book = QuoteBook(clock)
        self.symbols = [SYMBOL]
        self.connected = threading.Event()
        self.connections = 1

    def start(self) -> None:
        self.connected.set()

    def stop(self, timeout_s: float = 0) -> None:
        pass

    def age(self, symbol: str) -> float | None:
        return self.book.age(symbol)

    def touch_age(self, symbol: str) -> float | None:
        return self.book.touch_age(symbol)

    def mark_age(self, symbol: str) -> float | None:
        return self.book.mark_age(symbol)


class _Client:
    clock_offset_ms = 0

    def quote(self, symbol: str) -> Quote:
        return Quote(symbol, D(69999), D(70001), D(70000), None, None, START, "rest")

    def sync_time(self) -> int:
        return 0

    def close(self) -> None:
        pass


def test_marks_that_keep_ticking_do_not_make_an_old_bid_ask_current() -> None:
    clock = FakeClock(START)
    feed = _Feed(clock)
    feed.book.apply(QuoteUpdate(SYMBOL, START, bid=D(60000), ask=D(60001), mark=D(60000)))
    actor = ExchangeActor.start(
        "exchange.backpack", 0, clock, None, venue=Venue.BACKPACK, factory=lambda: (_Client(), feed), stale_after_s=5
    )
    try:
        assert actor.ask(GetQuote(SYMBOL), timeout=10).quote.source == "feed"  # both fresh: the feed's
        for _ in range(12):  # a minute of marks, no bid/ask
            clock.advance(5)
            feed.book.apply(QuoteUpdate(SYMBOL, clock.now(), mark=D(70000)))
        quote = actor.ask(GetQuote(SYMBOL), timeout=10).quote
    finally:
        actor.stop()
    assert (quote.source, quote.bid) == ("rest", D(69999))  # not the minute-old 60000
