from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from actors.messages import BeginOpen, CreatePair, TransitionPair
from core.clock import FakeClock
from core.domain import EventLevel, IllegalTransitionError, OrderPurpose, PairState, Side, Venue
from core.ledger import OrderState, PositionState
from storage.db import SchemaVersionError, create_schema, make_engine, open_database, open_database_readonly
from storage.errors import NotFoundError, TransitionRefusedError
from storage.migrations.runner import alembic_config
from storage.queries import Queries
from storage.records import LegFigures, LegPlan, NewEvent, NewFill, NewOrder, PairPlan
from storage.rows import leg_rows, pair_row
from storage.schema import CLIENT_ID_NAMESPACE_KEY, SCHEMA_VERSION, hedge_pairs, positions, schema_version
from storage.writes import Writes
from tests.writing import write

PLAN = PairPlan(
    market="BTC",
    long=LegPlan(Venue.BACKPACK, "BTC_USDC_PERP", Side.LONG),
    short=LegPlan(Venue.HIBACHI, "BTC/USDT-P", Side.SHORT),
    leverage=D("2.37"),
    notional=D("1000"),
    quantity=D("0.0153"),
    duration_s=5 * 3600,
)

AWKWARD = [
    D("0.000000001"),
    D("123456789.123456789"),
    D("0.1"),
    D("-98765432109876543.21"),
    D("1E-18"),
    D("0"),
    D("65000.50000"),
]


def _order(pair_id: int, position_id: int, client_id: str = "1024", venue: Venue = Venue.BACKPACK) -> NewOrder:
    return NewOrder(
        pair_id=pair_id,
        position_id=position_id,
        venue=venue,
        client_id=client_id,
        purpose=OrderPurpose.OPEN,
        attempt=0,
        side=Side.LONG,
        order_type="market",
        quantity=D("0.0153"),
    )


def _move(writes: Writes, pair_id: int, expected: PairState, to: PairState, reason: str, **kw: Any) -> int:
    """A transition with the event the writer gives it (actors/messages.py composes the text)."""
    m = TransitionPair(pair_id, expected, to, reason, **kw)
    return writes.transition_pair(m.pair_id, m.expected, m.to, m.event(), m.changes)


def test_sqlite_runs_in_wal_with_foreign_keys(repo: Queries) -> None:
    with repo.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        with pytest.raises(IntegrityError):
            conn.execute(
                text(
                    "INSERT INTO positions (pair_id, venue, symbol, side, quantity, state, updated_at) "
                    "VALUES (999, 'x', 'y', 'long', '1', 'pending', '2026-01-01')"
                )
            )


@pytest.mark.parametrize("value", AWKWARD, ids=str)
def test_decimals_round_trip_exactly(repo: Queries, writes: Writes, value: D) -> None:
    pair, _ = writes.insert_pair(_plan_with(value))
    back = repo.get_pair(pair.id)
    assert isinstance(back.notional, D)
    assert back.notional == value
    assert back.notional.as_tuple() == value.as_tuple()  # same digits and exponent, trailing zeros kept


def _plan_with(value: D) -> PairPlan:
    return PairPlan(PLAN.market, PLAN.long, PLAN.short, PLAN.leverage, value, PLAN.quantity, PLAN.duration_s)


def test_decimal_text_is_what_sqlite_holds(writes: Writes, tmp_path: Path) -> None:
    writes.insert_pair(_plan_with(D("123456789.123456789")))
    with sqlite3.connect(tmp_path / "test.db") as raw_db:
        raw = raw_db.execute("SELECT notional, typeof(notional) FROM hedge_pairs").fetchone()
    assert raw == ("123456789.123456789", "text")


def test_float_and_naive_datetime_are_refused(writes: Writes) -> None:
    with pytest.raises(StatementError, match="money is never float"):
        writes.insert_pair(_plan_with(0.1))  # type: ignore[arg-type]
    pair, _ = writes.insert_pair(PLAN)
    with pytest.raises(StatementError, match="naive datetime"):
        _move(writes, pair.id, PairState.PLANNED, PairState.OPENING, "go", changes={"opened_at": datetime(2026, 1, 1)})


def test_times_come_back_as_utc(repo: Queries, writes: Writes, clock: FakeClock) -> None:
    pair, _ = writes.insert_pair(PLAN)
    plus_two = timezone(timedelta(hours=2))
    expires = {"expires_at": datetime(2026, 5, 1, 14, 0, tzinfo=plus_two)}
    _move(writes, pair.id, PairState.PLANNED, PairState.OPENING, "go", changes=expires)
    back = repo.get_pair(pair.id)
    assert back.expires_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert back.expires_at.tzinfo is UTC
    assert back.created_at == clock.now()


def test_create_pair_writes_pair_legs_and_event(repo: Queries, clock: FakeClock) -> None:
    pair = repo.get_pair(write(repo.engine, clock, CreatePair(PLAN)).id)
    assert pair.state is PairState.PLANNED
    assert (pair.long_venue, pair.short_venue) == (Venue.BACKPACK, Venue.HIBACHI)
    legs = repo.positions_for_pair(pair.id)
    assert [(p.venue, p.side, p.symbol, p.quantity) for p in legs] == [
        (Venue.BACKPACK, Side.LONG, "BTC_USDC_PERP", D("0.0153")),
        (Venue.HIBACHI, Side.SHORT, "BTC/USDT-P", D("0.0153")),
    ]
    (event,) = repo.list_events(pair.id)
    assert event.kind == "pair_planned"
    assert event.data["quantity"] == "0.0153"
    assert event.message == f"pair {pair.id} planned: BTC long backpack / short hibachi, qty 0.0153, leverage 2.37"
    assert [leg.leverage_set for leg in legs] == [None, None]


def test_a_pair_insert_returns_its_rows_as_they_read(repo: Queries, writes: Writes) -> None:
    pair, legs = writes.insert_pair(PLAN, {Venue.BACKPACK: D(2), Venue.HIBACHI: D(3)})
    assert pair == repo.get_pair(pair.id)
    assert legs == repo.positions_for_pair(pair.id)
    assert [leg.leverage_set for leg in legs] == [D(2), D(3)]
    assert repo.list_events(pair.id) == []  # the event is the caller's: the writer adds it in the same batch


def test_transition_updates_state_and_writes_event(repo: Queries, writes: Writes, clock: FakeClock) -> None:
    pair, _ = writes.insert_pair(PLAN)
    _move(writes, pair.id, PairState.PLANNED, PairState.OPENING, "sending both legs")
    clock.advance(1)
    opened = clock.now()
    event_id = _move(
        writes,
        pair.id,
        PairState.OPENING,
        PairState.OPEN,
        "both legs filled",
        changes={"opened_at": opened, "expires_at": opened + timedelta(hours=5)},
    )
    back = repo.get_pair(pair.id)
    assert back.state is PairState.OPEN
    assert back.opened_at == opened
    latest = repo.list_events(pair.id)[0]
    assert latest.id == event_id
    assert latest.kind == "pair_open"
    assert latest.data == {"from": "opening", "to": "open", "reason": "both legs filled"}
    assert latest.message == f"pair {pair.id}: opening -> open: both legs filled"


def test_illegal_transition_changes_nothing(repo: Queries, writes: Writes) -> None:
    pair, _ = writes.insert_pair(PLAN)
    with pytest.raises(IllegalTransitionError):
        _move(writes, pair.id, PairState.PLANNED, PairState.OPEN, "skipping a step")
    assert repo.get_pair(pair.id).state is PairState.PLANNED
    assert len(repo.list_events(pair.id)) == 0


def test_transition_from_a_state_the_pair_is_not_in_is_refused(writes: Writes) -> None:
    pair, _ = writes.insert_pair(PLAN)
    _move(writes, pair.id, PairState.PLANNED, PairState.OPENING, "go")
    with pytest.raises(TransitionRefusedError) as info:
        _move(writes, pair.id, PairState.PLANNED, PairState.OPENING, "again")
    assert info.value.actual is PairState.OPENING
    with pytest.raises(TransitionRefusedError) as info:
        _move(writes, 12345, PairState.PLANNED, PairState.OPENING, "ghost")
    assert info.value.actual is None


def test_state_change_and_event_commit_together_or_not_at_all(repo: Queries, writes: Writes) -> None:
    pair, _ = writes.insert_pair(PLAN)
    # The event insert fails (its data cannot be stored) after the state UPDATE ran in the same transaction.
    with pytest.raises(TypeError, match="no JSON form"):
        _move(writes, pair.id, PairState.PLANNED, PairState.OPENING, "go", data={"bad": object()})
    assert repo.get_pair(pair.id).state is PairState.PLANNED
    assert repo.list_events(pair.id) == []
    # and the same call with good data goes through, both rows at once
    _move(writes, pair.id, PairState.PLANNED, PairState.OPENING, "go", data={"ok": D("1.5")})
    assert repo.get_pair(pair.id).state is PairState.OPENING
    assert repo.list_events(pair.id)[0].data["ok"] == "1.5"


def test_orders_and_fills(repo: Queries, writes: Writes, clock: FakeClock) -> None:
    pair, _ = writes.insert_pair(PLAN)
    long_leg = repo.positions_for_pair(pair.id)[0]
    (order,) = writes.record_orders([_order(pair.id, long_leg.id)])
    assert (order.status, order.filled_quantity, order.venue_order_id) == (OrderState.CREATED, D(0), None)
    assert order.status == "created"  # the stored text is unchanged
    with pytest.raises(IntegrityError):
        writes.record_orders([_order(pair.id, long_leg.id)])  # the same client id twice on one venue
    # the same client id on the other venue is a different order
    writes.record_orders([_order(pair.id, repo.positions_for_pair(pair.id)[1].id, venue=Venue.HIBACHI)])

    order_id = writes.update_order(
        Venue.BACKPACK,
        "1024",
        OrderState.PARTIALLY_FILLED,
        venue_order_id="111",
        filled_quantity=D("0.01"),
        avg_price=D("65000.5"),
        fee=D("0.1"),
    )
    assert order_id == order.id
    updated = repo.get_order(Venue.BACKPACK, "1024")
    assert (updated.status, updated.venue_order_id, updated.filled_quantity) == (
        OrderState.PARTIALLY_FILLED,
        "111",
        D("0.01"),
    )
    writes.update_order(Venue.BACKPACK, "1024", OrderState.FILLED, filled_quantity=D("0.0153"))
    kept = repo.get_order(Venue.BACKPACK, "1024")
    assert kept.venue_order_id == "111"  # unspecified fields are kept
    assert kept.avg_price == D("65000.5")
    with pytest.raises(NotFoundError):
        writes.update_order(Venue.BACKPACK, "999", OrderState.FILLED)

    fill = NewFill(Venue.BACKPACK, "1024", "t-1", D("65000.5"), D("0.01"), D("0.1"), clock.now(), "USDC", False)
    assert writes.record_fills([fill]) == 1
    assert writes.record_fills([fill]) == 0  # the same venue fill id is stored once
    assert (
        writes.record_fills([NewFill(Venue.BACKPACK, "1024", "t-2", D("65001"), D("0.0053"), D("0.05"), clock.now())])
        == 1
    )
    got = repo.fills_for_order(order.id)
    assert [(f.venue_fill_id, f.quantity) for f in got] == [("t-1", D("0.01")), ("t-2", D("0.0053"))]
    with pytest.raises(NotFoundError):
        writes.record_fills([NewFill(Venue.BACKPACK, "nope", "t-3", D(1), D(1), D(0), clock.now())])
    assert [o.client_id for o in repo.orders_for_pair(pair.id)] == ["1024", "1024"]
    assert repo.get_order(Venue.BACKPACK, "1024").status is OrderState.FILLED


def test_lists_events_and_snapshots(repo: Queries, writes: Writes, clock: FakeClock) -> None:
    a, _ = writes.insert_pair(PLAN)
    b, _ = writes.insert_pair(PLAN)
    _move(writes, b.id, PairState.PLANNED, PairState.OPENING, "go")
    assert [p.id for p in repo.list_active_pairs()] == [b.id, a.id]
    assert [p.id for p in repo.list_pairs([PairState.OPENING])] == [b.id]
    assert repo.count_pairs_by_state() == {PairState.PLANNED: 1, PairState.OPENING: 1}
    writes.add_event(NewEvent(EventLevel.CRITICAL, "naked_leg", "long leg unhedged", a.id, {"venue": Venue.BACKPACK}))
    assert repo.list_events(limit=1)[0].level is EventLevel.CRITICAL
    assert repo.list_events(limit=1)[0].data == {"venue": "backpack"}
    writes.add_snapshot(
        a.id,
        long_mark=D("65000.1"),
        short_mark=D("65001.2"),
        long_upnl=D("1.5"),
        short_upnl=D("-1.4"),
        long_collateral_ratio=D("4.2"),
        short_collateral_ratio=None,
        divergence=D("0.0001"),
    )
    clock.advance(60)
    writes.add_snapshot(
        a.id,
        long_mark=D("65002"),
        short_mark=None,
        long_upnl=None,
        short_upnl=None,
        long_collateral_ratio=None,
        short_collateral_ratio=None,
        divergence=None,
    )
    snaps = repo.list_snapshots(a.id)
    assert [s.long_mark for s in snaps] == [D("65000.1"), D("65002")]
    assert snaps[0].short_collateral_ratio is None
    with pytest.raises(NotFoundError):
        repo.get_pair(999)
    with pytest.raises(ValueError, match="cannot change"):
        _move(writes, a.id, PairState.PLANNED, PairState.OPENING, "go", changes={"state": "open"})


def test_second_start_on_the_same_file_keeps_everything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'db.sqlite'}"
    clock = FakeClock()
    engine = open_database(url, clock)
    pair, _ = Writes(engine, clock).insert_pair(PLAN)
    engine.dispose()
    engine = open_database(url, clock)
    repo = Queries(engine)
    assert repo.get_pair(pair.id).quantity == D("0.0153")
    with engine.connect() as conn:
        assert conn.execute(select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]
    engine.dispose()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(insert(schema_version).values(version=99, applied_at=datetime.now(UTC)))
    with pytest.raises(SchemaVersionError, match="newer"):
        create_schema(engine)
    engine.dispose()


def test_in_memory_url_works() -> None:
    engine = open_database("sqlite://")
    with engine.connect() as conn:
        assert conn.execute(select(hedge_pairs)).all() == []
    engine.dispose()


def _open(path: Path, clock: FakeClock) -> tuple[Engine, Queries]:
    engine = open_database(f"sqlite:///{path}", clock)
    return engine, Queries(engine)


LEVERAGE = ((Venue.BACKPACK, D(2)), (Venue.HIBACHI, D(2)))


def test_each_database_draws_its_own_client_id_namespace_and_keeps_it(tmp_path: Path) -> None:
    # The review: a new database restarted at pair 1 and minted last week's client ids again.
    clock = FakeClock()
    first, repo_a = _open(tmp_path / "a.db", clock)
    second, repo_b = _open(tmp_path / "b.db", clock)
    assert repo_a.client_id_namespace != repo_b.client_id_namespace
    orders_a = write(first, clock, BeginOpen(PLAN, LEVERAGE)).orders
    orders_b = write(second, clock, BeginOpen(PLAN, LEVERAGE)).orders
    assert orders_a[0].pair_id == orders_b[0].pair_id == 1
    assert {o.client_id for o in orders_a}.isdisjoint(o.client_id for o in orders_b)
    namespace = repo_a.client_id_namespace
    first.dispose()
    again, reopened = _open(tmp_path / "a.db", clock)
    assert reopened.client_id_namespace == namespace
    assert reopened.get_meta(CLIENT_ID_NAMESPACE_KEY) == namespace
    for engine in (again, second):
        engine.dispose()


def test_an_older_database_gains_a_namespace_and_keeps_its_stored_orders(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:  # the first schema (revision 0001), as the code before Alembic made it
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(insert(schema_version).values(version=1, applied_at=clock.now()))
        row = pair_row(PLAN, PairState.PLANNED, "default", clock.now())
        del row["account"]  # a column of a later revision
        pair_id = conn.execute(insert(hedge_pairs).values(row)).inserted_primary_key[0]
        long_id, short_id = (
            conn.execute(insert(positions).values(leg)).inserted_primary_key[0]
            for leg in leg_rows(pair_id, PLAN, None, clock.now())
        )
    writes = Writes(engine, clock)
    writes.record_orders([_order(pair_id, long_id, "1024")])
    writes.record_orders([_order(pair_id, short_id, "pf-1-S-open-0", Venue.HIBACHI)])
    with engine.begin() as conn:  # what a database made before the meta table (and Alembic) existed looks like
        conn.execute(text("DROP TABLE meta"))
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    engine, repo = _open(tmp_path / "old.db", clock)
    namespace = repo.get_meta(CLIENT_ID_NAMESPACE_KEY)  # drawn when the database was opened, then stored
    assert namespace is not None
    assert repo.client_id_namespace == namespace
    assert repo.get_order(Venue.BACKPACK, "1024").pair_id == pair_id
    assert repo.get_order(Venue.HIBACHI, "pf-1-S-open-0").pair_id == pair_id
    assert repo.get_pair(pair_id).account == "default"
    engine.dispose()


def test_a_read_only_reader_never_draws_a_namespace(tmp_path: Path) -> None:
    clock = FakeClock()
    engine, _ = _open(tmp_path / "ro.db", clock)
    with engine.begin() as conn:  # a database no engine of this version ever opened for writing
        conn.execute(text("DELETE FROM meta"))
    engine.dispose()
    reader = open_database_readonly(f"sqlite:///{tmp_path / 'ro.db'}")
    with pytest.raises(RuntimeError, match="no client-id namespace"):
        _ = Queries(reader).client_id_namespace
    assert Queries(reader).get_meta(CLIENT_ID_NAMESPACE_KEY) is None
    reader.dispose()


def test_meta_values_are_stored_and_replaced_but_the_namespace_is_fixed(repo: Queries, writes: Writes) -> None:
    assert repo.get_meta("paused") is None
    writes.set_meta("paused", "maintenance")
    assert repo.get_meta("paused") == "maintenance"
    writes.set_meta("paused", "")
    assert repo.get_meta("paused") == ""
    writes.set_meta("paused", None)
    assert repo.get_meta("paused") is None
    namespace = repo.client_id_namespace  # drawn when the database was opened
    with pytest.raises(ValueError, match="fixed"):
        writes.set_meta(CLIENT_ID_NAMESPACE_KEY, "aaaaaaa")
    assert repo.get_meta(CLIENT_ID_NAMESPACE_KEY) == namespace


def test_order_and_position_states_are_typed_and_stored_as_before(
    repo: Queries, writes: Writes, tmp_path: Path
) -> None:
    pair, (long_leg, _) = writes.insert_pair(PLAN)
    assert long_leg.state is PositionState.PENDING
    writes.record_orders([_order(pair.id, long_leg.id)])
    writes.update_order(Venue.BACKPACK, "1024", OrderState.IN_FLIGHT)
    writes.update_position(long_leg.id, LegFigures(D("0.0153"), D("65000"), state=PositionState.OPEN))
    assert repo.get_order(Venue.BACKPACK, "1024").status is OrderState.IN_FLIGHT
    leg = repo.positions_for_pair(pair.id)[0]
    assert (leg.state, leg.quantity, leg.entry_price, leg.mark_price) == (
        PositionState.OPEN,
        D("0.0153"),
        D("65000"),
        None,
    )
    with sqlite3.connect(tmp_path / "test.db") as raw_db:
        assert raw_db.execute("SELECT status FROM orders").fetchone() == ("in_flight",)
        assert raw_db.execute("SELECT state FROM positions WHERE id = ?", (leg.id,)).fetchone() == ("open",)


def test_leg_figures_keep_what_they_do_not_name_and_store_null_when_told(repo: Queries, writes: Writes) -> None:
    pair, (long_leg, _) = writes.insert_pair(PLAN)
    writes.update_position(long_leg.id, LegFigures(mark_price=D("65000"), unrealized_pnl=D("1.5")))
    writes.update_position(long_leg.id, LegFigures(fees=D("0.2")))
    leg = repo.positions_for_pair(pair.id)[0]
    assert (leg.mark_price, leg.unrealized_pnl, leg.fees, leg.quantity) == (D("65000"), D("1.5"), D("0.2"), D("0.0153"))
    writes.update_position(long_leg.id, LegFigures(mark_price=None, unrealized_pnl=None))  # no quote: unknown
    leg = repo.positions_for_pair(pair.id)[0]
    assert (leg.mark_price, leg.unrealized_pnl, leg.fees) == (None, None, D("0.2"))
    with pytest.raises(NotFoundError):
        writes.update_position(999, LegFigures(fees=D(0)))
