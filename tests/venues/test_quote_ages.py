"""QuoteBook's ages: the touch (bid and ask) and the mark each have their own, apart from the feed's last message.

A venue's mark stream keeps ticking when its bid/ask stream stalls; a touch judged by the last message of any
kind would look fresh for as long as marks arrive.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.clock import FakeClock
from exchanges.quotes import QuoteBook, QuoteUpdate

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
