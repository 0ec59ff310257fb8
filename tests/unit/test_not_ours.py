"""The age rule: an order a lookup finds under our client id, created before our own order row, belongs to
an earlier database (whose ids the venues kept) and is never booked as ours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from actors.exchange import ExchangeActor
from actors.messages import (
    LookupOrder,
    OrderAccepted,
    OrderInFlight,
    PlaceOrder,
    RecordFills,
    UpdateOrder,
)
from actors.timing import Timings
from actors.trader import NOT_OURS_WAIT_S, LegTrader
from core.clock import FakeClock
from core.domain import OrderPurpose, Side, Venue
from exchanges.ambiguity import resolve_lost_reply
from exchanges.backpack import parse as bp_parse
from exchanges.base import Fill, OrderRequest, OrderResult, OrderStatus, PreparedOrder
from exchanges.errors import VenueUnavailable
from exchanges.hibachi import parse as hb_parse
from storage.db import open_database
from storage.queries import Queries
from storage.records import LegPlan, NewOrder, OrderRecord, PairPlan, PositionRecord
from storage.writes import Writes
from tests.helpers import SleeplessClock

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
WEEK = timedelta(days=7)
CLIENT_ID = "pfabcdefg-1-S-open-0"
SYMBOL = "BTC/USDT-P"


# ---- venue creation times -----------------------------------------------------------------------------


def _bp_order(**extra: Any) -> dict[str, Any]:
    return {"id": "11", "clientId": 8192, "symbol": "BTC_USDC_PERP", "side": "Bid", "status": "Filled",
            "quantity": "0.01", "executedQuantity": "0.01", "executedQuoteQuantity": "650"} | extra  # fmt: skip


def _hb_order(**extra: Any) -> dict[str, Any]:
    return {"orderId": "22", "clientId": CLIENT_ID, "symbol": SYMBOL, "side": "ASK", "status": "FILLED",
            "totalQuantity": "0.01", "availableQuantity": "0"} | extra  # fmt: skip


def test_backpack_orders_carry_their_creation_time_in_both_forms() -> None:
    assert bp_parse.parse_order(_bp_order(createdAt=1772366400123)).created_at == datetime(
        2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC
    )  # live endpoints: ms
    assert bp_parse.parse_order(_bp_order(createdAt="2026-03-01T12:00:00.123")).created_at == datetime(
        2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC
    )  # history: naive ISO in UTC
    assert bp_parse.parse_order(_bp_order()).created_at is None
    assert bp_parse.parse_order(_bp_order(createdAt="yesterday")).created_at is None


def test_hibachi_orders_carry_their_creation_time() -> None:
    assert hb_parse.parse_order(_hb_order(creationTime=1772366400)).created_at == START  # seconds
    assert hb_parse.parse_order(_hb_order(createdAt=1772366400000)).created_at == START  # history: ms
    assert hb_parse.parse_order(_hb_order()).created_at is None
    assert hb_parse.parse_order(_hb_order(creationTime="soon")).created_at is None


# ---- a lost reply's lookup (venue clients) ------------------------------------------------------------


def _found(created_at: datetime | None) -> OrderResult:
    return OrderResult("22", CLIENT_ID, SYMBOL, Side.SHORT, OrderStatus.FILLED, D("0.01"), D("0.01"), D("65000"),
                       created_at=created_at)  # fmt: skip


def _lost(found: OrderResult, ours: datetime | None, venue_offset_ms: int = 0) -> OrderResult:
    request = OrderRequest(CLIENT_ID, SYMBOL, Side.SHORT, D("0.01"), created_at=ours)
    cause = VenueUnavailable("hibachi", "ReadTimeout")
    return resolve_lost_reply(
        "hibachi", request, cause, 0, FakeClock(START), lambda _s, _c: found, venue_offset_ms=venue_offset_ms
    )


def test_a_lost_reply_whose_lookup_finds_an_older_order_was_not_placed() -> None:
    with pytest.raises(VenueUnavailable, match="was not placed.*not ours") as info:
        _lost(_found(START - WEEK), START)
    assert type(info.value) is VenueUnavailable  # known dead: the open rolls back instead of booking a fill


def test_a_lost_reply_whose_lookup_finds_our_order_returns_it() -> None:
    assert _lost(_found(START - timedelta(seconds=1)), START).status is OrderStatus.FILLED  # whole seconds
    assert _lost(_found(START - WEEK), None).status is OrderStatus.FILLED  # our time unknown: no rule


# ---- the desk: places, settling lookups and reconciliation -------------------------------------------


class _Clock(SleeplessClock):
    """A fake clock whose sleeps pass at once (the settle loop pauses between lookups)."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start, advance_on_sleep=True)


class _Future:
    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self, timeout: float | None = None) -> Any:
        return self.value


class _Desk:
    """What LegTrader uses of a Desk: the repository, the clock, writes and venue lookups (scripted)."""

    def __init__(self, repo: Queries, clock: FakeClock, lookups: list[Any]) -> None:
        self.repo, self.clock, self.timings = repo, clock, Timings()
        self.writes: list[Any] = []
        self.lookups = lookups

    def write(self, message: Any) -> Any:
        self.writes.append(message)

    def ask_venue(self, venue: Venue, message: Any, timeout: float = 0) -> Any:
        assert isinstance(message, LookupOrder)
        return self.lookups.pop(0) if len(self.lookups) > 1 else self.lookups[0]


@pytest.fixture
def fake_clock() -> _Clock:
    return _Clock(START)


@pytest.fixture
def leg(tmp_path: Path, fake_clock: _Clock) -> Iterator[tuple[Queries, PositionRecord, OrderRecord]]:
    engine = open_database(f"sqlite:///{tmp_path / 'desk.db'}", fake_clock)
    repo, writes = Queries(engine), Writes(engine, fake_clock)
    long, short = LegPlan(Venue.BACKPACK, "BTC_USDC_PERP", Side.LONG), LegPlan(Venue.HIBACHI, SYMBOL, Side.SHORT)
    pair, (_, position) = writes.insert_pair(PairPlan("BTC", long, short, D(2), D(650), D("0.01"), 3600))
    new = NewOrder(pair.id, position.id, Venue.HIBACHI, CLIENT_ID, OrderPurpose.OPEN, 0, Side.SHORT, "market", D(1))
    (order,) = writes.record_orders([new])
    yield repo, position, order
    engine.dispose()


def _accepted(fill_ts: datetime) -> OrderAccepted:
    fill = Fill("t1", "22", CLIENT_ID, SYMBOL, Side.SHORT, D("65000"), D("0.01"), D("0.1"), "USDT", False, fill_ts)
    return OrderAccepted(Venue.HIBACHI, CLIENT_ID, "22", OrderStatus.FILLED, D("0.01"), D("0.01"), D("65000"), D("0.1"),
                         (fill,))  # fmt: skip


def _place(leg: tuple[Queries, PositionRecord, OrderRecord], clock: FakeClock, reply: Any) -> Any:
    repo, position, order = leg
    trader = LegTrader(_Desk(repo, clock, [reply]))  # type: ignore[arg-type]
    message = PlaceOrder(CLIENT_ID, SYMBOL, Side.SHORT, D("0.01"))
    return trader.outcome(position, order, message, _Future(reply)).reply  # type: ignore[arg-type]


def test_a_place_answered_directly_is_ours_even_when_the_host_clock_ran_ahead(leg: Any, fake_clock: _Clock) -> None:
    # The venue answered our own request: ours by construction. Judging its time against our row's (host clock
    # 6 minutes ahead of the venue here) would disown a real fill and leave an unbooked position.
    fake_clock.advance(2)
    reply = _place(leg, fake_clock, _accepted(START - timedelta(minutes=6)))
    assert isinstance(reply, OrderAccepted) and reply.filled_quantity == D("0.01")


def test_a_place_answered_with_our_own_fill_is_booked(leg: Any, fake_clock: _Clock) -> None:
    fake_clock.advance(2)
    reply = _place(leg, fake_clock, _accepted(START + timedelta(seconds=1)))
    assert isinstance(reply, OrderAccepted) and reply.filled_quantity == D("0.01")


def test_settling_lookups_that_find_only_an_older_order_leave_ours_in_flight(leg: Any, fake_clock: _Clock) -> None:
    repo, position, _ = leg
    trader = LegTrader(_Desk(repo, fake_clock, [_accepted(START - WEEK)]))  # type: ignore[arg-type]
    reply = trader.settle(position, CLIENT_ID, OrderInFlight(Venue.HIBACHI, CLIENT_ID, "reply lost"))
    assert isinstance(reply, OrderInFlight)


def test_reconciliation_never_books_an_older_order_and_calls_ours_dead_once_it_cannot_land(
    leg: Any, fake_clock: _Clock
) -> None:
    repo, position, _ = leg
    desk = _Desk(repo, fake_clock, [_accepted(START - WEEK)])
    trader = LegTrader(desk)  # type: ignore[arg-type]
    fake_clock.advance(10)
    assert trader.resolve(position) is False  # a request of ours could still land
    assert desk.writes == []
    fake_clock.advance(NOT_OURS_WAIT_S)
    assert trader.resolve(position) is True
    assert not any(isinstance(w, RecordFills) for w in desk.writes)
    [update] = desk.writes
    assert isinstance(update, UpdateOrder)
    assert update.status == "rejected" and "not ours" in (update.error or "")


def test_a_settling_lookup_that_finds_an_older_order_without_fills_leaves_ours_in_flight(
    leg: Any, fake_clock: _Clock
) -> None:
    repo, position, _ = leg
    old = OrderAccepted(Venue.HIBACHI, CLIENT_ID, "22", OrderStatus.NEW, D("0.01"), D(0), None, None,
                        created_at=START - WEEK)  # fmt: skip
    trader = LegTrader(_Desk(repo, fake_clock, [old]))  # type: ignore[arg-type]
    reply = trader.settle(position, CLIENT_ID, OrderInFlight(Venue.HIBACHI, CLIENT_ID, "reply lost"))
    assert isinstance(reply, OrderInFlight)  # judged by its venue creation time alone


def test_a_lost_reply_judges_the_venue_time_on_our_clock() -> None:
    # The venue's clock is 6 minutes behind ours: its order, made 1 s after our row by its clock, is ours.
    found = _found(START - timedelta(minutes=6) + timedelta(seconds=1))
    assert _lost(found, START, venue_offset_ms=-360_000).status is OrderStatus.FILLED


class _Client:
    """A venue client double that keeps the requests it is given and answers with an old order."""

    def __init__(self) -> None:
        self.requests: list[OrderRequest] = []
        self.clock_offset_ms = 0

    def sync_time(self) -> int:
        return self.clock_offset_ms

    def prepare_order(self, request: OrderRequest) -> PreparedOrder:
        return PreparedOrder(request)

    def send_order(self, prepared: PreparedOrder) -> OrderResult:
        return self.place_order(prepared.request)

    def place_order(self, request: OrderRequest) -> OrderResult:
        self.requests.append(request)
        return OrderResult("22", request.client_id, request.symbol, request.side, OrderStatus.NEW, request.quantity,
                           D(0), None, None, created_at=START - WEEK)  # fmt: skip


def _place_through_actor(client: _Client) -> Any:
    """One place through a real ExchangeActor whose venue client is `client`."""
    actor = ExchangeActor.start(
        "exchange.hibachi", 0, FakeClock(START), None, venue=Venue.HIBACHI, factory=lambda: (client, None),
        stale_after_s=5,
    )  # fmt: skip
    try:
        return actor.ask(PlaceOrder(CLIENT_ID, SYMBOL, Side.SHORT, D("0.01"), created_at=START), timeout=10)
    finally:
        actor.stop()


def test_the_exchange_actor_carries_creation_times_both_ways() -> None:
    client = _Client()
    reply = _place_through_actor(client)
    assert [r.created_at for r in client.requests] == [START]  # our row's time reaches the lost-reply rule
    assert isinstance(reply, OrderAccepted) and reply.created_at == START - WEEK  # the venue's reaches the desk


def test_the_exchange_actor_puts_venue_times_on_our_clock() -> None:
    client = _Client()
    client.clock_offset_ms = -360_000  # the venue's clock 6 minutes behind ours
    reply = _place_through_actor(client)
    assert isinstance(reply, OrderAccepted) and reply.created_at == START - WEEK + timedelta(minutes=6)
