"""One transaction for an open (as the writer composes it), write batches that commit together or not at all,
and WAL checkpoints taken off the writer."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from actors.messages import BeginOpen, OpenBegun, TransitionPair
from core.clock import FakeClock
from core.domain import IllegalTransitionError, OrderPurpose, PairState, Side, Venue
from core.ids import OrderKey
from core.ledger import OrderState
from exchanges.registry import client_id_for
from storage.db import Checkpointer, is_sqlite_file, open_database
from storage.errors import NotFoundError, TransitionRefusedError
from storage.queries import Queries
from storage.records import LegFigures, LegPlan, NewFill, NewOrder, OrderRecord, PairPlan
from storage.writes import Writes
from tests.writing import write

PLAN = PairPlan(
    market="BTC",
    long=LegPlan(Venue.HIBACHI, "BTC/USDT-P", Side.LONG),
    short=LegPlan(Venue.BACKPACK, "BTC_USDC_PERP", Side.SHORT),
    leverage=D("2.5"),
    notional=D("1000"),
    quantity=D("0.0153"),
    duration_s=5 * 3600,
)
LEVERAGE = ((Venue.BACKPACK, D("2")), (Venue.HIBACHI, D("3")))


def _begin_open(repo: Queries, clock: FakeClock, leverage: tuple[tuple[Venue, D], ...] = LEVERAGE) -> OpenBegun:
    """BeginOpen as the writer applies it."""
    begun = write(repo.engine, clock, BeginOpen(PLAN, leverage))
    assert isinstance(begun, OpenBegun)
    return begun


def test_begin_open_writes_an_opening_pair_with_its_legs_and_both_orders(repo: Queries, clock: FakeClock) -> None:
    begun = _begin_open(repo, clock)
    pair, legs, orders = repo.get_pair(begun.pair_id), list(begun.legs), list(begun.orders)

    assert pair.state is PairState.OPENING
    assert [(leg.side, leg.venue, leg.leverage_set) for leg in legs] == [
        (Side.LONG, Venue.HIBACHI, D("3")),
        (Side.SHORT, Venue.BACKPACK, D("2")),
    ]
    # The rows come back from the INSERTs themselves: they must read exactly as a later read does.
    assert legs == repo.positions_for_pair(pair.id)
    assert orders == sorted(repo.orders_for_pair(pair.id), key=lambda o: o.side is not Side.LONG)
    assert [(o.position_id, o.side, o.quantity, o.status, o.reduce_only) for o in orders] == [
        (legs[0].id, Side.LONG, D("0.0153"), OrderState.CREATED, False),
        (legs[1].id, Side.SHORT, D("0.0153"), OrderState.CREATED, False),
    ]
    namespace = repo.client_id_namespace
    assert orders[0].client_id == client_id_for(
        Venue.HIBACHI, OrderKey(pair.id, Side.LONG, OrderPurpose.OPEN, 0), namespace
    )
    assert orders[1].client_id == client_id_for(
        Venue.BACKPACK, OrderKey(pair.id, Side.SHORT, OrderPurpose.OPEN, 0), namespace
    )
    events = list(reversed(repo.list_events(pair.id)))
    assert [e.kind for e in events] == ["pair_planned", "pair_opening"]
    assert events[1].message == f"pair {pair.id}: planned -> opening: sending both legs"
    assert events[1].data == {
        "from": "planned",
        "to": "opening",
        "reason": "sending both legs",
        "quantity": "0.0153",
        "leverage": "2.5",
        "execution": "taker",
        "mid": {},
    }


def test_begin_open_leaves_nothing_when_it_fails(repo: Queries, clock: FakeClock) -> None:
    begun = _begin_open(repo, clock)
    with pytest.raises(KeyError):  # no leverage for the short venue: fails after the pair row was inserted
        _begin_open(repo, clock, ((Venue.HIBACHI, D(3)),))
    assert [p.id for p in repo.list_pairs()] == [begun.pair_id]
    assert {e.pair_id for e in repo.list_events()} == {begun.pair_id}


def test_fills_are_recorded_in_bulk_each_once(repo: Queries, writes: Writes, clock: FakeClock) -> None:
    long_order, short_order = _begin_open(repo, clock).orders

    def fill(order: OrderRecord, fill_id: str, quantity: str) -> NewFill:
        return NewFill(order.venue, order.client_id, fill_id, D("65000"), D(quantity), D("0.1"), clock.now())

    assert writes.record_fills([fill(long_order, "7", "0.01")]) == 1
    batch = [fill(long_order, "7", "0.01"), fill(long_order, "8", "0.0053"), fill(short_order, "8", "0.0153")]
    assert writes.record_fills([*batch, batch[1]]) == 2  # "7" was stored before; "8" twice is one fill
    stored = {(f.venue_fill_id, f.quantity) for o in (long_order, short_order) for f in repo.fills_for_order(o.id)}
    assert stored == {("7", D("0.01")), ("8", D("0.0053")), ("8", D("0.0153"))}  # fill ids are per venue
    with pytest.raises(NotFoundError):
        writes.record_fills(
            [fill(long_order, "9", "0.01"), NewFill(Venue.HIBACHI, "nope", "10", D(1), D(1), D(0), clock.now())]
        )
    assert len(repo.fills_for_order(long_order.id)) == 2  # nothing of the refused call was written


def test_a_fill_id_repeated_by_another_order_of_the_same_venue_is_a_fill_of_its_own(
    repo: Queries, writes: Writes, clock: FakeClock
) -> None:
    # Backpack's trade ids are a sequence per symbol: the BTC leg's fill "42" and a later ETH fill "42" are two
    # fills. Keyed by (venue, fill id), the second was taken as stored already and dropped from the ledger.
    first = _begin_open(repo, clock).orders[1]  # the Backpack leg
    second = _begin_open(repo, clock).orders[1]
    assert first.venue is second.venue is Venue.BACKPACK

    def fill(order: OrderRecord, quantity: str) -> NewFill:
        return NewFill(order.venue, order.client_id, "42", D("3500"), D(quantity), D("0.1"), clock.now())

    assert writes.record_fills([fill(first, "0.0153")]) == 1
    assert writes.record_fills([fill(second, "0.0153"), fill(first, "0.0153")]) == 1  # the first one is known
    assert [f.quantity for f in repo.fills_for_order(second.id)] == [D("0.0153")]


def _move(writes: Writes, pair_id: int, expected: PairState, to: PairState, reason: str) -> int:
    m = TransitionPair(pair_id, expected, to, reason)
    return writes.transition_pair(m.pair_id, m.expected, m.to, m.event(), m.changes)


def test_a_batch_commits_every_write_or_none(repo: Queries, writes: Writes, clock: FakeClock) -> None:
    begun = _begin_open(repo, clock)
    pair_id, legs, orders = begun.pair_id, begun.legs, begun.orders
    with pytest.raises(TransitionRefusedError), writes.batch():
        writes.update_order(orders[0].venue, orders[0].client_id, OrderState.FILLED, filled_quantity=D("0.0153"))
        writes.update_position(legs[0].id, LegFigures(quantity=D("0.0153")))
        _move(writes, pair_id, PairState.OPEN, PairState.CLOSING, "not in OPEN: refused")
    assert repo.get_order(orders[0].venue, orders[0].client_id).status == "created"
    assert repo.positions_for_pair(pair_id)[0].quantity == D("0.0153")  # the plan's, not overwritten
    assert repo.get_pair(pair_id).state is PairState.OPENING

    with writes.batch():
        writes.update_order(orders[0].venue, orders[0].client_id, OrderState.FILLED, filled_quantity=D("0.01"))
        _move(writes, pair_id, PairState.OPENING, PairState.OPEN, "filled")
    assert repo.get_order(orders[0].venue, orders[0].client_id).filled_quantity == D("0.01")
    assert repo.get_pair(pair_id).state is PairState.OPEN


def test_batches_do_not_nest(writes: Writes) -> None:
    with pytest.raises(RuntimeError, match="do not nest"), writes.batch(), writes.batch():
        pass


def test_with_manual_checkpoints_only_the_checkpointer_empties_the_wal(tmp_path: Path, clock: FakeClock) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'c.db'}", clock, manual_checkpoints=True)
    repo = Queries(db)
    assert is_sqlite_file(db)
    with db.connect() as conn:
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
    for _ in range(300):  # well past SQLite's automatic threshold of 1000 pages
        _begin_open(repo, clock)
    wal = tmp_path / "c.db-wal"
    grown = wal.stat().st_size
    assert grown > 1000 * 4096
    checkpointer = Checkpointer(db)
    checkpointer.checkpoint()
    with db.connect() as conn:  # everything is in the main file now: the WAL restarts from its beginning
        busy, log_pages, moved = conn.execute(text("PRAGMA wal_checkpoint(PASSIVE)")).one()
    assert (busy, log_pages, moved) == (0, log_pages, log_pages)
    assert checkpointer.done == 1
    db.dispose()


def test_the_checkpointer_thread_runs_until_stopped(tmp_path: Path, clock: FakeClock) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'c.db'}", clock, manual_checkpoints=True)
    checkpointer = Checkpointer(db, every_s=0.01).start()
    _begin_open(Queries(db), clock)
    checkpointer.stop()
    assert checkpointer.done >= 1  # at least the final one
    assert not checkpointer._thread.is_alive()
    db.dispose()


def test_without_manual_checkpoints_sqlite_keeps_its_own(tmp_path: Path, clock: FakeClock) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'a.db'}", clock)
    with db.connect() as conn:
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1000
    assert not is_sqlite_file(open_database("sqlite://", clock))
    db.dispose()


def test_legs_with_orders_reads_many_pairs_as_reading_them_one_by_one(
    repo: Queries, writes: Writes, clock: FakeClock
) -> None:
    first = _begin_open(repo, clock)
    second = _begin_open(repo, clock)
    legs, orders = second.legs, second.orders
    (closing,) = writes.record_orders(
        [
            NewOrder(
                second.pair_id,
                legs[1].id,
                Venue.BACKPACK,
                "77",
                OrderPurpose.CLOSE,
                0,
                Side.LONG,
                "market",
                D("0.0153"),
                reduce_only=True,
            )
        ]
    )
    assert closing == repo.get_order(Venue.BACKPACK, "77")  # the row RETURNING gave back reads as stored
    assert (closing.status, closing.filled_quantity, closing.reduce_only) == ("created", D(0), True)
    books = repo.legs_with_orders([first.pair_id, second.pair_id])
    for pair_id in (first.pair_id, second.pair_id):
        one_by_one = [(leg, repo.orders_for_position(leg.id)) for leg in repo.positions_for_pair(pair_id)]
        assert books[pair_id] == one_by_one
    assert [o.client_id for o in books[second.pair_id][1][1]] == [orders[1].client_id, "77"]
    assert repo.legs_with_orders([]) == {}


def test_begin_open_is_four_statements(repo: Queries, clock: FakeClock) -> None:
    # Every statement of BeginOpen stands between deciding to open and the orders leaving (bench figure 2): the
    # pair (born OPENING), its legs, its orders, its two events. A fifth would be a measurable regression.
    _begin_open(repo, clock)  # the first draws the client-id namespace, a write of its own
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE", "PRAGMA", "SELECT")):
            statements.append(statement.split(maxsplit=1)[0].upper())

    event.listen(repo.engine, "before_cursor_execute", count)
    try:
        _begin_open(repo, clock)
    finally:
        event.remove(repo.engine, "before_cursor_execute", count)
    assert statements == ["INSERT", "INSERT", "INSERT", "INSERT"]


def test_a_pair_cannot_be_born_in_a_state_planned_cannot_reach(writes: Writes) -> None:
    with pytest.raises(IllegalTransitionError):
        writes.insert_pair(PLAN, born=PairState.OPEN)
