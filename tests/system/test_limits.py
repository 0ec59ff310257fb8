"""Each risk limit tripped through the real runtime on the paper venues: what it closes, that opening stays
blocked across a restart, and that only `resume --limit NAME` clears it."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest

from actors.messages import OpenDeclined, OpenNow
from actors.runtime import Runtime
from control.protocol import CommandError
from control.render import render_status
from core.domain import EventLevel, PairState, Side
from core.limits import Limit
from exchanges.base import OrderType
from storage.records import jsonable
from tests.helpers import wait_until
from tests.system.conftest import Running
from tests.system.test_engine import BTC_ONLY, _collateral_price

Factory = Callable[..., Running]
BOTH = [*BTC_ONLY, {"name": "ETH", "backpack_symbol": "ETH_USDC_PERP", "hibachi_symbol": "ETH/USDT-P"}]
HOLD = {"min_duration_hours": 1, "max_duration_hours": 1}  # pairs stay open unless a limit closes them
LOOSE = {"max_daily_cost_usd": 10000, "max_drawdown_usd": 10000, "max_opens_per_hour": 1000}


def _trip(run: Running, limit: Limit) -> Any:
    kind = f"{limit}_tripped"
    wait_until(lambda: kind in run.kinds(), 20, f"{limit} to trip")
    event = next(e for e in run.repo.list_events(limit=1000) if e.kind == kind)
    assert event.level is EventLevel.CRITICAL  # critical events go to the alert sinks
    return event


def _row(runtime: Runtime, limit: Limit) -> dict[str, Any]:
    return next(r for r in runtime.command("status", {})["limits"] if r["name"] == limit.value)


def _declined(runtime: Runtime) -> str:
    reply = runtime.supervisor.ref("coordinator").ask(OpenNow(), timeout=30)  # type: ignore[union-attr]
    assert isinstance(reply, OpenDeclined)
    return reply.reason


def _monitor_ticks(run: Running, count: int) -> None:
    start = run.runtime.actor_status("monitor").get("ticks") or 0
    wait_until(lambda: (run.runtime.actor_status("monitor").get("ticks") or 0) >= start + count, 20, "monitor ticks")


def test_a_drawdown_closes_every_pair_and_stays_tripped_across_a_restart_until_resumed_by_name(
    engine_factory: Factory,
) -> None:
    config = {
        "trading": {**HOLD, "markets": BOTH, "max_concurrent_pairs": 2},
        "limits": {**LOOSE, "max_drawdown_usd": 5},
    }
    run = engine_factory(config)
    wait_until(lambda: len(run.pairs(PairState.OPEN)) == 2, 20, "two open pairs")
    assert _row(run.runtime, Limit.MAX_DRAWDOWN)["figure"] is not None  # measured before anything breaks
    # Hibachi's prices jump 10% above Backpack's: its shorts lose about 20 USD, the longs make nothing.
    run.runtime.paper.hibachi.engine.basis = D("0.1")  # type: ignore[union-attr]
    event = _trip(run, Limit.MAX_DRAWDOWN)
    assert "below its high-water mark" in event.message
    wait_until(lambda: len(run.pairs(PairState.CLOSED)) == 2, 20, "every pair closed by the kill switch")
    assert all("limit max_drawdown_usd" in (p.close_reason or "") for p in run.pairs())
    assert "max_drawdown_usd" in _declined(run.runtime)
    row = _row(run.runtime, Limit.MAX_DRAWDOWN)
    assert row["tripped"] and row["limit"] == D(5) and row["figure"] > D(5)
    assert "TRIPPED" in render_status(jsonable(run.runtime.command("status", {})))
    run.halt()
    run.runtime.shutdown()

    again = engine_factory(config)  # the same data dir: a restart
    assert _row(again.runtime, Limit.MAX_DRAWDOWN)["tripped"]
    wait_until(lambda: "reconciled" in again.kinds(), 20, "start-up reconciliation")
    _monitor_ticks(again, 3)
    assert again.pairs(PairState.OPEN) == []  # still blocked
    assert again.runtime.command("resume", {}) == {"trading": "normal", "still_tripped": ["max_drawdown_usd"]}
    assert "max_drawdown_usd" in _declined(again.runtime)  # a plain resume clears no trip
    with pytest.raises(CommandError) as caught:
        again.runtime.command("resume", {"limit": "max_drawdown"})
    assert caught.value.code == "unknown_limit" and "max_drawdown_usd" in caught.value.message
    cleared = again.runtime.command("resume", {"limit": "max_drawdown_usd"})
    assert cleared == {"limit": "max_drawdown_usd", "cleared": True, "still_tripped": []}
    assert again.repo.get_meta(Limit.MAX_DRAWDOWN.key) is None
    again.wait_pair(PairState.OPEN, what="a pair once the kill switch is cleared")


def test_a_venue_below_the_closing_collateral_ratio_closes_its_pair(engine_factory: Factory) -> None:
    run = engine_factory({"paper": {"collateral_usd": 100}, "trading": {**HOLD, "markets": BTC_ONLY}, "limits": LOOSE})
    pair = run.wait_pair(PairState.OPEN)
    paper = run.runtime.paper
    assert paper is not None
    paper.prices.freeze("BTC")
    alarms = run.runtime.desk.activity.alarms()
    paper.prices.set_price("BTC", _collateral_price(run.runtime, "BTC/USDT-P", D("1.1")))  # liquidation is at 1
    event = _trip(run, Limit.MIN_COLLATERAL_RATIO_CLOSE)
    # A maker phase holding the closer would end: what the limit closes must not wait up to maker_timeout_s.
    assert run.runtime.desk.activity.alarm_since(alarms) == "limit min_collateral_ratio_close tripped"
    assert event.message.startswith("hibachi: collateral ratio 1.1") and "below" in event.message
    closed = run.wait_pair(PairState.CLOSED, what="the pair on the weakest venue closed")
    assert closed.id == pair.id and "min_collateral_ratio_close" in (closed.close_reason or "")
    assert paper.hibachi.account().liquidations == 0
    assert "min_collateral_ratio_close" in _declined(run.runtime)
    assert not _row(run.runtime, Limit.MAX_DRAWDOWN)["tripped"]  # hedged: the long made what the short lost


def test_a_naked_leg_older_than_the_limit_is_closed_at_once_despite_the_retry_backoff(engine_factory: Factory) -> None:
    def refuse_the_first_repair(runtime: Runtime) -> None:
        runtime.paper.hibachi.engine.faults.reject_orders(1, 4, "Busy", reduce_only=True)  # type: ignore[union-attr]

    config = {
        "trading": {**HOLD, "markets": BTC_ONLY},
        "timings": {"leg_retry_min_s": 60, "leg_retry_max_s": 60},  # the next ordinary retry: a minute away
        "limits": {**LOOSE, "max_naked_seconds": 1},
    }
    run = engine_factory(config, setup=refuse_the_first_repair)
    pair = run.wait_pair(PairState.OPEN)
    bp = run.runtime.paper.backpack  # type: ignore[union-attr]
    # The long vanishes outside the farmer: the pair turns NAKED, and the repair of its short is refused once.
    bp.engine.place(bp.account(), symbol="BTC_USDC_PERP", side=Side.SHORT, order_type=OrderType.MARKET,
                    quantity=pair.quantity, reduce_only=True)  # fmt: skip
    run.wait_pair(PairState.NAKED, what="the pair turned naked")
    wait_until(lambda: "close_retry" in run.kinds(), 10, "the refused repair")
    event = _trip(run, Limit.MAX_NAKED_SECONDS)
    assert event.pair_id == pair.id and "accepting the cost" in event.message
    closed = run.wait_pair(PairState.CLOSED, timeout_s=15, what="the naked leg closed before its next retry")
    assert closed.id == pair.id
    forced = [e for e in run.repo.list_events(pair.id) if e.kind == "limit_close"]
    assert [e.level for e in forced] == [EventLevel.CRITICAL]
    assert "max_naked_seconds" in _declined(run.runtime)


def test_an_open_beyond_the_notional_per_venue_is_refused(engine_factory: Factory) -> None:
    config = {
        "trading": {**HOLD, "markets": BOTH, "max_concurrent_pairs": 2},
        "limits": {**LOOSE, "max_notional_usd": 150},  # one pair of 100 per venue fits, two do not
    }
    run = engine_factory(config)
    first = run.wait_pair(PairState.OPEN)
    event = _trip(run, Limit.MAX_NOTIONAL)
    assert "above limits.max_notional_usd = 150" in event.message
    _monitor_ticks(run, 3)
    assert [p.id for p in run.pairs()] == [first.id]  # the second was never recorded, the first stays open
    assert run.repo.get_pair(first.id).state is PairState.OPEN
    row = _row(run.runtime, Limit.MAX_NOTIONAL)
    assert row["tripped"] and D(90) < row["figure"] <= D(100)  # what the open pair holds per venue


def test_the_days_cost_pauses_opening_but_closes_nothing(engine_factory: Factory) -> None:
    config = {
        "trading": {**HOLD, "markets": BOTH, "max_concurrent_pairs": 2},
        "limits": {**LOOSE, "max_daily_cost_usd": "0.05"},  # the first pair's opening fees are above it
    }
    run = engine_factory(config)
    first = run.wait_pair(PairState.OPEN)
    _trip(run, Limit.MAX_DAILY_COST)
    _monitor_ticks(run, 3)
    assert [(p.id, p.state) for p in run.pairs()] == [(first.id, PairState.OPEN)]
    assert run.runtime.command("resume", {})["still_tripped"] == ["max_daily_cost_usd"]
    assert _row(run.runtime, Limit.MAX_DAILY_COST)["figure"] > D("0.05")


def test_the_hourly_opens_guard_stops_a_runaway(engine_factory: Factory) -> None:
    run = engine_factory({"trading": {"markets": BTC_ONLY}, "limits": {**LOOSE, "max_opens_per_hour": 2}})
    event = _trip(run, Limit.MAX_OPENS_PER_HOUR)
    assert event.message.startswith("2 pairs opened in the last hour")
    _monitor_ticks(run, 3)
    assert len(run.pairs()) == 2
    assert _row(run.runtime, Limit.MAX_OPENS_PER_HOUR)["figure"] == D(2)
