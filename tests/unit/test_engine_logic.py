"""The engine's pure parts: the leg ledger, planning, the restart policy, the control protocol and rendering."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from decimal import Decimal as D

import pytest

from actors.supervision import RestartPolicy
from control.commands import render
from control.protocol import MAX_REQUEST_BYTES, CommandError, error, ok, parse_request
from control.render import table
from core.config import DirectionPolicy, TradingConfig
from core.domain import OrderPurpose, Side, Venue
from core.ledger import backoff_s, is_unresolved, leg_book, net_quantity
from core.planning import OpenPlan, PlanDeclined, VenueView, choose_long_venue, plan_open


@dataclass(frozen=True)
class Ord:
    purpose: OrderPurpose
    status: str
    filled_quantity: D
    avg_price: D | None = None
    fee: D | None = None


def test_ledger_nets_opens_against_reductions() -> None:
    orders = [
        Ord(OrderPurpose.OPEN, "filled", D(2), D(100), D("0.1")),
        Ord(OrderPurpose.CLOSE, "expired", D("0.5"), D(110), D("0.05")),
        Ord(OrderPurpose.CLOSE, "rejected", D(0)),
        Ord(OrderPurpose.REPAIR, "filled", D("1.5"), D(90), D("0.05")),
    ]
    assert net_quantity(orders) == 0
    assert net_quantity(orders[:2]) == D("1.5")
    book = leg_book(Side.LONG, orders)
    assert (book.opened, book.entry_price, book.reduced, book.held) == (D(2), D(100), D(2), D(0))
    assert book.exit_price == D(95)  # (0.5 x 110 + 1.5 x 90) / 2
    assert book.realized_pnl == D(-10)
    assert book.fees == D("0.2")
    assert book.volume == D(200) + D(55) + D(135)
    assert leg_book(Side.SHORT, orders).realized_pnl == D(10)


def test_unresolved_orders_block_decisions() -> None:
    assert is_unresolved(Ord(OrderPurpose.OPEN, "created", D(0)))
    assert is_unresolved(Ord(OrderPurpose.OPEN, "in_flight", D(0)))
    assert is_unresolved(Ord(OrderPurpose.OPEN, "new", D(0)))  # resting: may still fill
    assert not is_unresolved(Ord(OrderPurpose.OPEN, "filled", D(1)))
    assert not is_unresolved(Ord(OrderPurpose.OPEN, "rejected", D(0)))


def test_backoff() -> None:
    assert [backoff_s(n, D(1), D(10)) for n in range(6)] == [D(1), D(2), D(4), D(8), D(10), D(10)]


def _view(venue: Venue, available: D = D(10000), max_leverage: D = D(20), mark: D = D(65000)) -> VenueView:
    return VenueView(venue, "X", mark, D("0.00001"), D("0.00001"), D(0), max_leverage, available, D("0.0001"))


def test_plan_sizes_on_the_dearer_mark_and_draws_in_range() -> None:
    trading = TradingConfig()
    plan = plan_open(random.Random(3), trading, "BTC", _view(Venue.BACKPACK, mark=D(65000)),
                     _view(Venue.HIBACHI, mark=D(65010)))  # fmt: skip
    assert isinstance(plan, OpenPlan)
    assert plan.quantity == D("0.00153")  # 100 / 65010 rounded down to the step
    assert D(2) <= plan.leverage <= D(3)
    assert 4 * 3600 <= plan.duration.total_seconds() <= 8 * 3600


def test_plan_declines_with_a_reason() -> None:
    trading = TradingConfig()
    poor = plan_open(random.Random(1), trading, "BTC", _view(Venue.BACKPACK, available=D(10)), _view(Venue.HIBACHI))
    assert isinstance(poor, PlanDeclined) and "backpack: free collateral 10.00" in poor.reason
    capped = plan_open(random.Random(1), trading, "BTC", _view(Venue.BACKPACK), _view(Venue.HIBACHI, max_leverage=D(1)))
    assert isinstance(capped, PlanDeclined) and "above the market's maximum" in capped.reason
    tiny = plan_open(random.Random(1), trading.model_copy(update={"notional_usd": D("0.1")}), "BTC",
                     _view(Venue.BACKPACK), _view(Venue.HIBACHI))  # fmt: skip
    assert isinstance(tiny, PlanDeclined) and tiny.reason.startswith("sizing:")


def test_direction_policies() -> None:
    rng = random.Random(0)
    both = (Venue.BACKPACK, Venue.HIBACHI)
    assert choose_long_venue(DirectionPolicy.FIXED, rng, {}, both) == (Venue.BACKPACK, Venue.HIBACHI)
    assert choose_long_venue(DirectionPolicy.FIXED, rng, {}, both[::-1]) == (Venue.HIBACHI, Venue.BACKPACK)
    funding = {Venue.BACKPACK: D("0.0003"), Venue.HIBACHI: D("0.0001")}
    assert choose_long_venue(DirectionPolicy.FUNDING, rng, funding, both) == (Venue.HIBACHI, Venue.BACKPACK)
    seen = {choose_long_venue(DirectionPolicy.RANDOM, rng, {}, both) for _ in range(50)}
    assert len(seen) == 2


def test_restart_policy_backs_off_and_gives_up_within_the_window() -> None:
    policy = RestartPolicy(max_restarts=3, window_s=60, backoff_min_s=0.5, backoff_max_s=1.5)
    assert [policy.on_failure(t) for t in (0, 1, 2)] == [0.5, 1.0, 1.5]
    assert policy.on_failure(3) is None
    assert policy.on_failure(100) == 0.5  # the old failures left the window


def test_protocol_parses_and_refuses() -> None:
    assert parse_request(b'{"cmd": "pair", "args": {"id": 3}}') == ("pair", {"id": 3})
    for raw, code in [
        (b"\xff", "bad_json"), (b"{", "bad_json"), (b"3", "bad_json"), (b'{"cmd": "x"}', "unknown_command"),
        (b'{"cmd": "status", "args": []}', "bad_request"), (b" " * (MAX_REQUEST_BYTES + 1), "too_large"),
    ]:  # fmt: skip
        with pytest.raises(CommandError) as info:
            parse_request(raw)
        assert info.value.code == code
    with pytest.raises(CommandError, match="token"):
        parse_request(b'{"cmd": "status"}', token="t")
    assert json.loads(ok({"x": D("1.5")})) == {"ok": True, "data": {"x": "1.5"}}
    assert json.loads(error("c", "m")) == {"ok": False, "error": {"code": "c", "message": "m"}}


def test_rendering_is_readable() -> None:
    assert table([(1, None)], ["a", "b"]).splitlines() == ["a  b", "-  -", "1  -"]
    assert render("health", {"healthy": False, "database": True, "actors": {"monitor": False, "writer": True}}) == (
        "UNHEALTHY: database ok; actors down: monitor"
    )
    assert render("close-all", {"states": {}}) == "nothing to close"
