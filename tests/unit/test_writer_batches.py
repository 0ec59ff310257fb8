"""The PersistenceWriter's batches: one transaction, and alerts only for what committed."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D

import pykka
import pytest

from actors.messages import BeginOpen, CreatePair, OpenBegun, TransitionPair, UpdatePosition, WriteBatch, Written
from actors.writer import PersistenceWriter
from alerts.policy import Alert
from core.clock import FakeClock
from core.domain import EventLevel, PairState, Venue
from storage.errors import TransitionRefusedError
from storage.queries import Queries
from storage.records import LegFigures
from tests.writing import PLAN


@pytest.fixture
def writer(repo: Queries, clock: FakeClock) -> Iterator[tuple[pykka.ActorRef[PersistenceWriter], list[Alert]]]:
    alerts: list[Alert] = []
    ref = PersistenceWriter.start("writer", 0, clock, None, db=repo.engine, notify=alerts.append)
    yield ref, alerts
    ref.stop()


def test_begin_open_and_a_batch_commit_and_alert_once_committed(
    writer: tuple[pykka.ActorRef[PersistenceWriter], list[Alert]], repo: Queries
) -> None:
    ref, alerts = writer
    begun = ref.ask(BeginOpen(PLAN, ((Venue.BACKPACK, D(2)), (Venue.HIBACHI, D(3)))))
    assert isinstance(begun, OpenBegun)
    assert [leg.leverage_set for leg in begun.legs] == [D(2), D(3)]
    naked = TransitionPair(begun.pair_id, PairState.OPENING, PairState.NAKED, "test", level=EventLevel.CRITICAL)
    written = ref.ask(WriteBatch((UpdatePosition(begun.legs[0].id, LegFigures(quantity=D("0.005"))), naked)))
    assert isinstance(written, tuple) and all(isinstance(w, Written) for w in written)
    assert repo.get_pair(begun.pair_id).state is PairState.NAKED
    assert [a.kind for a in alerts] == ["pair_naked"]


def test_a_failed_batch_writes_nothing_and_alerts_nothing(
    writer: tuple[pykka.ActorRef[PersistenceWriter], list[Alert]], repo: Queries
) -> None:
    ref, alerts = writer
    begun = ref.ask(BeginOpen(PLAN, ((Venue.BACKPACK, D(2)), (Venue.HIBACHI, D(3)))))
    naked = TransitionPair(begun.pair_id, PairState.OPENING, PairState.NAKED, "first", level=EventLevel.CRITICAL)
    refused = TransitionPair(begun.pair_id, PairState.OPEN, PairState.CLOSING, "not OPEN", level=EventLevel.WARNING)
    with pytest.raises(TransitionRefusedError):
        ref.ask(WriteBatch((naked, refused)))
    assert repo.get_pair(begun.pair_id).state is PairState.OPENING
    assert alerts == []


def test_an_adopted_pair_and_an_opened_one_go_through_the_same_insert(
    writer: tuple[pykka.ActorRef[PersistenceWriter], list[Alert]], repo: Queries
) -> None:
    ref, _ = writer
    adopted = ref.ask(CreatePair(PLAN)).id
    begun = ref.ask(BeginOpen(PLAN, ((Venue.BACKPACK, D(2)), (Venue.HIBACHI, D(3)))))
    assert repo.get_pair(adopted).state is PairState.PLANNED
    assert [leg.leverage_set for leg in repo.positions_for_pair(adopted)] == [None, None]
    planned = [e for e in repo.list_events() if e.kind == "pair_planned"]
    assert [e.pair_id for e in planned] == [begun.pair_id, adopted]
    assert {e.message.split(" planned: ")[1] for e in planned} == {
        "BTC long backpack / short hibachi, qty 0.01, leverage 2"
    }


def test_a_create_pair_inside_a_batch_joins_its_transaction(
    writer: tuple[pykka.ActorRef[PersistenceWriter], list[Alert]], repo: Queries
) -> None:
    ref, _ = writer
    refused = TransitionPair(999, PairState.OPEN, PairState.CLOSING, "no such pair")
    with pytest.raises(TransitionRefusedError):
        ref.ask(WriteBatch((CreatePair(PLAN), refused)))
    assert repo.list_pairs() == []
    assert repo.list_events() == []


def test_a_committed_naked_transition_raises_the_alarm_and_a_refused_one_does_not(
    repo: Queries, clock: FakeClock
) -> None:
    """Whoever turns a pair NAKED (an open's rollback, the closer, recovery), the writer raises the alarm that ends
    running maker phases, once the transition has committed."""
    alarms: list[str] = []
    ref = PersistenceWriter.start("writer", 0, clock, None, db=repo.engine, alarm=alarms.append)
    try:
        begun = ref.ask(BeginOpen(PLAN, ((Venue.BACKPACK, D(2)), (Venue.HIBACHI, D(3)))))
        naked = TransitionPair(begun.pair_id, PairState.OPENING, PairState.NAKED, "test", level=EventLevel.CRITICAL)
        refused = TransitionPair(begun.pair_id, PairState.OPEN, PairState.CLOSING, "not OPEN")
        with pytest.raises(TransitionRefusedError):
            ref.ask(WriteBatch((naked, refused)))
        assert alarms == []  # rolled back with its batch
        ref.ask(naked)
        assert alarms == [f"pair {begun.pair_id} is NAKED"]
    finally:
        ref.stop()
