"""One transaction for an open, write batches that commit together or not at all, and WAL checkpoints
taken off the writer."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import text

from core.clock import FakeClock
from core.domain import OrderPurpose, PairState, Side, Venue
from core.ids import OrderKey
from exchanges.registry import client_id_for
from storage.db import Checkpointer, is_sqlite_file, open_database
from storage.records import OrderRecord
from storage.repository import (
    LegPlan,
    NewFill,
    NewOrder,
    NotFoundError,
    PairPlan,
    Repository,
    TransitionRefusedError,
)

PLAN = PairPlan(
    market="BTC",
    long=LegPlan(Venue.HIBACHI, "BTC/USDT-P", Side.LONG),
    short=LegPlan(Venue.BACKPACK, "BTC_USDC_PERP", Side.SHORT),
    leverage=D("2.5"),
    notional=D("1000"),
    quantity=D("0.0153"),
    duration_s=5 * 3600,
)
LEVERAGE = {Venue.BACKPACK: D("2"), Venue.HIBACHI: D("3")}


def test_begin_open_writes_an_opening_pair_with_its_legs_and_both_orders(repo: Repository) -> None:
    pair, legs, orders = repo.begin_open(PLAN, LEVERAGE)

    assert repo.get_pair(pair.id).state is PairState.OPENING
    assert [(leg.side, leg.venue, leg.leverage_set) for leg in legs] == [
        (Side.LONG, Venue.HIBACHI, D("3")),
        (Side.SHORT, Venue.BACKPACK, D("2")),
    ]
    # The rows come back from the INSERTs themselves: they must read exactly as a later read does.
    assert pair == repo.get_pair(pair.id)
    assert legs == repo.positions_for_pair(pair.id)
    assert orders == sorted(repo.orders_for_pair(pair.id), key=lambda o: o.side is not Side.LONG)
    assert [(o.position_id, o.side, o.quantity, o.status, o.reduce_only) for o in orders] == [
        (legs[0].id, Side.LONG, D("0.0153"), "created", False),
        (legs[1].id, Side.SHORT, D("0.0153"), "created", False),
    ]
    namespace = repo.client_id_namespace
    assert orders[0].client_id == client_id_for(
        Venue.HIBACHI, OrderKey(pair.id, Side.LONG, OrderPurpose.OPEN, 0), namespace
    )
    assert orders[1].client_id == client_id_for(
        Venue.BACKPACK, OrderKey(pair.id, Side.SHORT, OrderPurpose.OPEN, 0), namespace
    )
    assert [e.kind for e in reversed(repo.list_events(pair.id))] == ["pair_planned", "pair_opening"]


def test_begin_open_leaves_nothing_when_it_fails(repo: Repository) -> None:
    pair, _, _ = repo.begin_open(PLAN, LEVERAGE)
    with pytest.raises(KeyError):  # no leverage for the short venue: fails after the pair row was inserted
        repo.begin_open(PLAN, {Venue.HIBACHI: D(3)})
    assert [p.id for p in repo.list_pairs()] == [pair.id]


def test_fills_are_recorded_in_bulk_each_once(repo: Repository, clock: FakeClock) -> None:
    _, _, (long_order, short_order) = repo.begin_open(PLAN, LEVERAGE)

    def fill(order: OrderRecord, fill_id: str, quantity: str) -> NewFill:
        return NewFill(order.venue, order.client_id, fill_id, D("65000"), D(quantity), D("0.1"), clock.now())

    assert repo.record_fills([fill(long_order, "7", "0.01")]) == 1
    batch = [fill(long_order, "7", "0.01"), fill(long_order, "8", "0.0053"), fill(short_order, "8", "0.0153")]
    assert repo.record_fills([*batch, batch[1]]) == 2  # "7" was stored before; "8" twice is one fill
    stored = {(f.venue_fill_id, f.quantity) for o in (long_order, short_order) for f in repo.fills_for_order(o.id)}
    assert stored == {("7", D("0.01")), ("8", D("0.0053")), ("8", D("0.0153"))}  # fill ids are per venue
    with pytest.raises(NotFoundError):
        repo.record_fills(
            [fill(long_order, "9", "0.01"), NewFill(Venue.HIBACHI, "nope", "10", D(1), D(1), D(0), clock.now())]
        )
    assert len(repo.fills_for_order(long_order.id)) == 2  # nothing of the refused call was written


def test_a_batch_commits_every_write_or_none(repo: Repository) -> None:
    pair, legs, orders = repo.begin_open(PLAN, LEVERAGE)
    with pytest.raises(TransitionRefusedError), repo.batch():
        repo.update_order(orders[0].venue, orders[0].client_id, "filled", filled_quantity=D("0.0153"))
        repo.update_position(legs[0].id, quantity=D("0.0153"))
        repo.transition_pair(pair.id, PairState.OPEN, PairState.CLOSING, "not in OPEN: refused")
    assert repo.get_order(orders[0].venue, orders[0].client_id).status == "created"
    assert repo.positions_for_pair(pair.id)[0].quantity == D("0.0153")  # the plan's, not overwritten
    assert repo.get_pair(pair.id).state is PairState.OPENING

    with repo.batch():
        repo.update_order(orders[0].venue, orders[0].client_id, "filled", filled_quantity=D("0.01"))
        repo.transition_pair(pair.id, PairState.OPENING, PairState.OPEN, "filled")
    assert repo.get_order(orders[0].venue, orders[0].client_id).filled_quantity == D("0.01")
    assert repo.get_pair(pair.id).state is PairState.OPEN


def test_batches_do_not_nest(repo: Repository) -> None:
    with pytest.raises(RuntimeError, match="do not nest"), repo.batch(), repo.batch():
        pass


def test_with_manual_checkpoints_only_the_checkpointer_empties_the_wal(tmp_path: Path, clock: FakeClock) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'c.db'}", clock, manual_checkpoints=True)
    repo = Repository(db, clock)
    assert is_sqlite_file(db)
    with db.connect() as conn:
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
    for _ in range(300):  # well past SQLite's automatic threshold of 1000 pages
        repo.begin_open(PLAN, LEVERAGE)
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
    Repository(db, clock).begin_open(PLAN, LEVERAGE)
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


def test_legs_with_orders_reads_many_pairs_as_reading_them_one_by_one(repo: Repository) -> None:
    first, _, _ = repo.begin_open(PLAN, LEVERAGE)
    second, legs, orders = repo.begin_open(PLAN, LEVERAGE)
    closing = repo.record_order(
        NewOrder(
            second.id,
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
    )
    assert closing == repo.get_order(Venue.BACKPACK, "77")  # the row RETURNING gave back reads as stored
    assert (closing.status, closing.filled_quantity, closing.reduce_only) == ("created", D(0), True)
    books = repo.legs_with_orders([first.id, second.id])
    for pair_id in (first.id, second.id):
        one_by_one = [(leg, repo.orders_for_position(leg.id)) for leg in repo.positions_for_pair(pair_id)]
        assert books[pair_id] == one_by_one
    assert [o.client_id for o in books[second.id][1][1]] == [orders[1].client_id, "77"]
    assert repo.legs_with_orders([]) == {}
