"""An adopted position's pair is written in one transaction: the pair, its external order, its moves to NAKED."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from actors.messages import Adoption, CreatePair, TransitionPair, WriteBatch
from core.clock import FakeClock
from core.domain import OrderPurpose, PairState, Side, Venue
from core.ledger import OrderState
from storage.errors import TransitionRefusedError
from storage.queries import Queries
from storage.records import LegPlan, PairPlan
from tests.writing import write

PLAN = PairPlan(
    "SOL_USDC_PERP",
    LegPlan(Venue.HIBACHI, "SOL_USDC_PERP", Side.LONG),
    LegPlan(Venue.BACKPACK, "SOL_USDC_PERP", Side.SHORT),
    D(1),
    D(300),
    D(3),
    0,
)
ADOPTED = CreatePair(PLAN, adoption=Adoption(Venue.BACKPACK, D(100), "unknown short 3 adopted"))


def test_the_adopted_pair_its_order_and_its_moves_commit_together(repo: Queries, clock: FakeClock) -> None:
    pair_id = write(repo.engine, clock, ADOPTED).id
    assert repo.get_pair(pair_id).state is PairState.NAKED
    [order] = repo.orders_for_pair(pair_id)
    assert (order.venue, order.type, order.purpose, order.side, order.status, order.filled_quantity) == (
        Venue.BACKPACK, "external", OrderPurpose.OPEN, Side.SHORT, OrderState.FILLED, D(3),
    )  # fmt: skip
    assert order.client_id.startswith("ext-") and order.avg_price == D(100) and order.fee == 0
    kinds = [e.kind for e in reversed(repo.list_events())]
    assert kinds == ["pair_planned", "pair_opening", "pair_naked"]


def test_an_adoption_that_fails_leaves_nothing(repo: Queries, clock: FakeClock) -> None:
    refused = TransitionPair(999, PairState.OPEN, PairState.CLOSING, "no such pair")
    with pytest.raises(TransitionRefusedError):
        write(repo.engine, clock, WriteBatch((ADOPTED, refused)))
    assert repo.list_pairs() == [] and repo.list_events() == []


def test_a_plain_create_pair_writes_only_the_pair() -> None:
    assert CreatePair(PLAN).then(1, []) == ()
