"""QuoteBook's ages: the touch (bid and ask) and the mark each have their own, apart from the feed's last message.

A venue's mark stream keeps ticking when its bid/ask stream stalls; a touch judged by the last message of any
kind would look fresh for as long as marks arrive.
"""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal as D

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from core.clock import FakeClock, SystemClock
from core.domain import Venue
from exchanges.quotes import QuoteBook, QuoteUpdate
from live import rules
from live.probe import Endpoints, first_quotes
from live.rules import Status

BTC = "BTC_USDC_PERP"


def _touch(clock: FakeClock, bid: str, ask: str) -> QuoteUpdate:
    return QuoteUpdate(BTC, clock.now(), bid=D(bid), ask=D(ask))


def _mark(clock: FakeClock, mark: str) -> QuoteUpdate:
    return QuoteUpdate(BTC, clock.now(), mark=D(mark), funding_rate=D("0.0001"))


def test_marks_alone_renew_the_mark_and_the_feed_but_not_the_touch() -> None:
    clock = FakeClock()
    book = QuoteBook(clock)
    book.apply(_touch(clock, "60000", "60000.2"))
    book.apply(_mark(clock, "60000.1"))
    for _ in range(600):  # ten minutes of mark-only messages, one a second
        clock.advance(1)
        book.apply(_mark(clock, "70000"))
    assert book.touch_age(BTC) == pytest.approx(600)
    assert book.mark_age(BTC) == 0 and book.age(BTC) == 0  # the feed is alive and its mark is fresh
    quote = book.get(BTC)
    assert quote is not None and (quote.bid, quote.ask, quote.mark) == (D(60000), D("60000.2"), D(70000))
    # A new touch is fresh again, and leaves the mark's own age alone.
    clock.advance(2)
    book.apply(_touch(clock, "69999.9", "70000.1"))
    assert book.touch_age(BTC) == 0 and book.mark_age(BTC) == pytest.approx(2) and book.age(BTC) == 0


def test_a_one_sided_message_does_not_renew_the_touch() -> None:
    clock = FakeClock()
    book = QuoteBook(clock)
    book.apply(_touch(clock, "100", "101"))
    clock.advance(3)
    book.apply(QuoteUpdate(BTC, clock.now(), bid=D("100.5")))  # the ask is still 3 s old
    assert book.touch_age(BTC) == pytest.approx(3) and book.age(BTC) == 0


def test_never_received_parts_have_no_age() -> None:
    clock = FakeClock()
    book = QuoteBook(clock)
    assert (book.age(BTC), book.touch_age(BTC), book.mark_age(BTC)) == (None, None, None)
    book.apply(_mark(clock, "70000"))
    clock.advance(1)
    assert book.touch_age(BTC) is None and book.mark_age(BTC) == pytest.approx(1)
    assert book.is_stale(BTC, 0.5) and not book.is_stale(BTC, 5)


# ---- a live venue whose bid/ask stream stalls while its mark stream ticks on ------------------------------


class StalledTouchVenue:
    """A Backpack-shaped websocket on 127.0.0.1: `symbol`'s bookTicker is sent once per connection (after
    `marks_first` marks; never when `touch` is None) while its markPrice ticks every `every_s`, 70000 and up by 1
    each time. Every other subscribed market gets a fresh touch and mark each tick. Any path but "/" is a
    silent socket (a feed that connects and hears nothing)."""

    def __init__(
        self, symbol: str, touch: tuple[str, str] | None, *, marks_first: int = 0, every_s: float = 0.02
    ) -> None:
        self.symbol = symbol
        self.touch = touch
        self.marks_first = marks_first
        self.every_s = every_s
        self.marks_sent = 0
        self.touches_sent = 0
        self._stop = threading.Event()
        self._server: Server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, name="stalled-touch", daemon=True)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"

    def __enter__(self) -> StalledTouchVenue:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._thread.join(5)

    @staticmethod
    def _frame(stream: str, symbol: str, **data: object) -> str:
        return json.dumps({"stream": f"{stream}.{symbol}", "data": {"s": symbol, "E": time.time_ns() // 1000, **data}})

    def _handle(self, conn: ServerConnection) -> None:
        try:
            if conn.request is not None and conn.request.path != "/":
                for _ in conn:  # silent: read until the client leaves
                    pass
                return
            subscribe = json.loads(conn.recv(timeout=5))
            symbols = sorted({stream.split(".", 1)[1] for stream in subscribe["params"]})
            marks = 0
            while not self._stop.is_set():
                for symbol in symbols:
                    if symbol != self.symbol:
                        conn.send(self._frame("bookTicker", symbol, b="100", a="100.2"))
                        conn.send(self._frame("markPrice", symbol, p="100.1", f="0.0001"))
                    else:
                        if self.touch is not None and marks == self.marks_first:
                            conn.send(self._frame("bookTicker", symbol, b=self.touch[0], a=self.touch[1]))
                            self.touches_sent += 1
                        conn.send(self._frame("markPrice", symbol, p=str(70000 + marks), f="0.0001"))
                        marks += 1
                        self.marks_sent += 1
                self._stop.wait(self.every_s)  # the venue's own publishing pace, not a test's wait
        except ConnectionClosed:
            pass


# ---- the pre-flight check's feed test -------------------------------------------------------------------


def _endpoints(ws_url: str) -> Endpoints:
    # Only the websockets are used by first_quotes; Hibachi's hears nothing (it is not awaited here).
    return Endpoints("http://127.0.0.1:1", ws_url, None, None, "http://127.0.0.1:1", "http://127.0.0.1:1",
                     f"{ws_url}/hibachi", None, None, None, None, None)  # fmt: skip


def test_the_checks_feed_test_is_not_passed_by_marks_alone() -> None:
    with StalledTouchVenue(BTC, None) as venue:
        arrived = first_quotes(_endpoints(venue.url), {Venue.BACKPACK: [BTC], Venue.HIBACHI: []}, SystemClock(), 1.0)
    assert arrived[Venue.BACKPACK] == {BTC: None}
    assert venue.marks_sent > 10  # marks flowed the whole time; no bid/ask ever did
    assert rules.feed(Venue.BACKPACK, arrived[Venue.BACKPACK], 1.0).status is Status.FAIL


def test_the_checks_feed_test_passes_on_the_first_touch_after_marks() -> None:
    with StalledTouchVenue(BTC, ("69999.9", "70000.1"), marks_first=5) as venue:
        arrived = first_quotes(_endpoints(venue.url), {Venue.BACKPACK: [BTC], Venue.HIBACHI: []}, SystemClock(), 10)
        assert venue.touches_sent == 1 and venue.marks_sent > 5
    first = arrived[Venue.BACKPACK][BTC]
    assert first is not None and first < 10
    assert rules.feed(Venue.BACKPACK, arrived[Venue.BACKPACK], 10).status is Status.PASS
