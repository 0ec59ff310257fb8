"""The live book (actors/livebook.py): the Monitor's ticks and `status` read the pairs from memory; the writer
tells the book what each commit changed, and a reading re-reads only those pairs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, event

from actors.gate import TradingGate
from actors.limitbook import LimitBook
from actors.livebook import book_of
from actors.messages import RecordEvent, TransitionPair, UpdateOrder
from control.commands import status
from core.domain import EventLevel, PairState
from core.ledger import OrderState
from tests.actors.test_closer_rig import Rig, rig
from tests.actors.test_monitor import Monitored


@contextmanager
def selects(engine: Engine) -> Iterator[list[str]]:
    """The SELECT statements run on `engine` inside the block."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[Monitored]:
    for made in rig(tmp_path):
        yield Monitored(made)


def _held(made: Rig) -> dict[int, PairState]:
    return {p.pair.id: p.pair.state for p in book_of(made.db).live()}


def test_a_tick_with_nothing_changed_reads_nothing_from_the_database(monitor: Monitored) -> None:
    made = monitor.rig
    made.open_pair(), made.open_pair()
    monitor.tick()  # the first tick of a Monitor reads the book whole
    with selects(made.db) as seen:
        monitor.tick(3)
    assert seen == []
    assert monitor.told("closer") == [] and monitor.told("coordinator") == []


def test_the_book_follows_a_committed_fill_and_transition_reading_only_that_pair(monitor: Monitored) -> None:
    made = monitor.rig
    first, second = made.open_pair(), made.open_pair()
    monitor.tick()
    begun = made.begin()
    made.send(begun, begun.legs[0].side)  # a fill on the third pair's long leg, committed by the writer
    made.desk.write(TransitionPair(first, PairState.OPEN, PairState.CLOSING, "test"))
    with selects(made.db) as seen:
        monitor.tick()
    assert _held(made) == {begun.pair_id: PairState.OPENING, second: PairState.OPEN, first: PairState.CLOSING}
    third = next(p for p in book_of(made.db).live() if p.pair.id == begun.pair_id)
    assert [x.held for x in third.legs] == [begun.orders[0].quantity, 0]
    # The two changed pairs, each by id, then their legs and orders in two queries: not the whole book.
    assert len(seen) == 4
    with selects(made.db) as seen:
        monitor.tick()
    assert seen == []


def test_a_reading_waits_for_a_commit_under_way(monitor: Monitored) -> None:
    """A commit is told before a reading can pass it: the position checks compare nothing older."""
    made = monitor.rig
    book = book_of(made.db)
    book.sync(made.repo, made.clock.now())
    pair_id = made.open_pair()
    inside, release = threading.Event(), threading.Event()

    def commit() -> None:
        with book.committing(TransitionPair(pair_id, PairState.OPEN, PairState.CLOSING, "test")) as done:
            inside.set()
            release.wait(10)
            done.done(None)

    writer = threading.Thread(target=commit)
    writer.start()
    assert inside.wait(10)
    assert not book.sync(made.repo, made.clock.now(), wait=False)  # a status call does not wait: it says so
    release.set()
    writer.join(10)
    assert book.sync(made.repo, made.clock.now())
    assert pair_id in _held(made)


def test_a_failed_write_makes_the_next_reading_read_everything(monitor: Monitored) -> None:
    made = monitor.rig
    made.open_pair()
    monitor.tick()
    with pytest.raises(Exception, match="no backpack order"):
        made.desk.write(UpdateOrder(made.begin().orders[0].venue, "nobody", OrderState.FILLED))
    with selects(made.db) as seen:
        monitor.tick()
    assert len(seen) >= 4  # pairs, legs, orders, counts, events: the whole book again


def _host(made: Rig) -> Any:
    refs = {name: made.directory.get(name) for name in ("monitor", "coordinator", "closer")}
    supervisor = SimpleNamespace(status=dict, ref=refs.get)
    limits = LimitBook(made.settings.limits, made.desk.write, lambda _m: None)
    return SimpleNamespace(
        settings=made.settings, clock=made.clock, repo=made.repo, gate=TradingGate(), limits=limits,
        supervisor=supervisor, paper=None, started_at=made.clock.now(),
    )  # fmt: skip


def test_status_answers_from_memory(monitor: Monitored) -> None:
    made = monitor.rig
    pair_id = made.open_pair()
    monitor.tick()
    host = _host(made)
    status(host, {})
    made.desk.write(RecordEvent(EventLevel.WARNING, "test_warning", "something to see", pair_id, {}))
    with selects(made.db) as seen:
        data = status(host, {})
    assert seen == []
    assert data["pairs"]["open"] == 1 and [p["id"] for p in data["open_pairs"]] == [pair_id]
    assert data["alerts"][0]["kind"] == "test_warning"  # told by the writer as it committed
    assert data["monitor_ticks"] == 1  # published by the Monitor at the end of its tick
    made.desk.write(TransitionPair(pair_id, PairState.OPEN, PairState.CLOSING, "test"))
    with selects(made.db) as seen:
        data = status(host, {})
    assert data["pairs"]["open"] == 0 and data["pairs"]["closing"] == 1
    assert len(seen) == 3  # the one pair the writer changed, its legs and its orders


def test_changes_nobody_reads_are_dropped_for_a_whole_reading(
    monitor: Monitored, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = monitor.rig
    monkeypatch.setattr("actors.livebook.MAX_UNREAD_CHANGES", 2)
    book = book_of(made.db)
    book.sync(made.repo, made.clock.now())
    pair_id = made.open_pair()  # more than two changes, none read
    assert len(book._changes) <= 2  # what is kept, unread: never more than the bound
    book.sync(made.repo, made.clock.now())
    assert pair_id in _held(made)
