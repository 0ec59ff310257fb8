"""Maker execution end to end on the paper venues: post-only legs rest at the touch, every maker fill is
hedged at once, and the books, the venues and the fee sides agree."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

from actors.maker import NOT_SENT
from actors.messages import OpenNow, PairOpened
from actors.runtime import Runtime
from core.domain import OrderPurpose, PairState, Venue
from exchanges.base import OrderType
from tests.helpers import wait_until
from tests.system.conftest import Running

Factory = Callable[..., Running]
BTC_ONLY = [{"name": "BTC", "backpack_symbol": "BTC_USDC_PERP", "hibachi_symbol": "BTC/USDT-P"}]


def _settings(execution: Any, **extra: Any) -> dict[str, Any]:
    return {
        "trading": {
            "markets": BTC_ONLY,
            "notional_usd": 200,
            "min_duration_hours": 1,
            "max_duration_hours": 1,
            "execution": execution
            if isinstance(execution, dict)
            else {"open": execution, "close": execution}
            | {"maker_timeout_s": 30, "max_unhedged_usd": 60, "imbalance_usd": 30, "poll_s": "0.2"}
            | extra,
        }
    }


def _ready(run: Running) -> Running:
    runtime = run.runtime
    wait_until(runtime.reconcile, 10, "start-up reconciliation")
    for venue in (Venue.BACKPACK, Venue.HIBACHI):
        client = runtime.supervisor.ref(f"exchange.{venue.value}").proxy().client.get()
        wait_until(client.account_stream.healthy, 10, f"{venue.value} account stream")
    return run


def _venue_qty(runtime: Runtime, venue: Venue, symbol: str) -> D:
    sims = {Venue.BACKPACK: runtime.paper.backpack, Venue.HIBACHI: runtime.paper.hibachi}  # type: ignore[union-attr]
    pos = sims[venue].account().positions.get(symbol)
    return pos.quantity if pos else D(0)


def test_maker_taker_rests_one_leg_and_hedges_every_fill(engine_factory: Factory) -> None:
    run = engine_factory(_settings("maker_taker", maker_venue="hibachi"), start_loop=False)
    _ready(run)
    opened = run.runtime.supervisor.ref("coordinator").ask(OpenNow("BTC"), timeout=90)
    assert isinstance(opened, PairOpened), opened
    pair = run.repo.get_pair(opened.pair_id)
    assert pair.state is PairState.OPEN
    orders = run.repo.orders_for_pair(pair.id)
    maker = [o for o in orders if o.type == "limit"]
    assert maker and all(o.venue is Venue.HIBACHI for o in maker)
    fills = {o.id: run.repo.fills_for_order(o.id) for o in orders}
    maker_fills = [f for o in maker for f in fills[o.id]]
    assert maker_fills and all(f.is_maker for f in maker_fills)
    # Both venues hold exactly what the books say.
    assert _venue_qty(run.runtime, Venue.BACKPACK, "BTC_USDC_PERP") == pair.quantity
    assert _venue_qty(run.runtime, Venue.HIBACHI, "BTC/USDT-P") == -pair.quantity
    hedges = [e for e in run.repo.list_events(pair.id, limit=1000) if e.kind == "maker_hedge"]
    assert hedges and all(e.data["venue"] == "backpack" for e in hedges)
    # Every hedge was sent after its fill was heard and took less than the maker_unhedged bound.
    assert all(e.data["heard_to_wire_us"] is not None for e in hedges)
    assert all(D(e.data["usd"]) <= D(60) * D("1.01") for e in hedges)
    # Hedge orders are recorded ahead, while the maker order rests: each sent one's row says what was sent, and
    # the one left over is marked never sent (not left for a lookup to wonder about).
    hedge_rows = [o for o in orders if o.venue is Venue.BACKPACK and o.type == "market"]
    sent = [o for o in hedge_rows if o.error != NOT_SENT]
    assert sent and all(o.status == "filled" and o.quantity == o.filled_quantity for o in sent), sent
    assert all(o.status == "rejected" for o in hedge_rows if o.error == NOT_SENT)


def test_maker_maker_rests_both_legs_and_closes_maker_too(engine_factory: Factory) -> None:
    run = engine_factory(_settings("maker_maker"), start_loop=False)
    _ready(run)
    opened = run.runtime.supervisor.ref("coordinator").ask(OpenNow("BTC"), timeout=90)
    assert isinstance(opened, PairOpened), opened
    pair = run.repo.get_pair(opened.pair_id)
    orders = run.repo.orders_for_pair(pair.id)
    assert {o.venue for o in orders if o.type == "limit"} == {Venue.BACKPACK, Venue.HIBACHI}
    assert _venue_qty(run.runtime, Venue.BACKPACK, "BTC_USDC_PERP") == pair.quantity
    assert _venue_qty(run.runtime, Venue.HIBACHI, "BTC/USDT-P") == -pair.quantity
    from actors.messages import ClosePair

    run.runtime.supervisor.ref("closer").ask(ClosePair(pair.id, "test"), timeout=90)
    pair = run.repo.get_pair(pair.id)
    assert pair.state is PairState.CLOSED
    closes = [o for o in run.repo.orders_for_pair(pair.id) if o.purpose is OrderPurpose.CLOSE]
    assert any(o.type == "limit" and o.filled_quantity > 0 for o in closes)
    # Hibachi takes one order flag: its maker close rests post-only alone (a post-only reduce-only one would be
    # refused before it left), sized within the leg.
    hibachi = [o for o in closes if o.venue is Venue.HIBACHI and o.type == "limit"]
    assert hibachi and all(not o.reduce_only and "LOCAL" not in (o.error or "") for o in hibachi), hibachi
    assert any(o.status != "rejected" for o in hibachi)  # some rested (a post-only that would take is refused)
    assert _venue_qty(run.runtime, Venue.BACKPACK, "BTC_USDC_PERP") == 0
    assert _venue_qty(run.runtime, Venue.HIBACHI, "BTC/USDT-P") == 0


def test_maker_taker_records_the_next_hedge_ahead_after_each_partial_fill(engine_factory: Factory) -> None:
    """A hedge takes the order recorded for it while the maker order rests; after a partial fill the next one is
    recorded at once, so the next fill's hedge does not write its row on the fill -> wire path (it did: only
    placing a maker order recorded one, and the tail of fill -> wire was those writes)."""
    settings = _settings("maker_taker", maker_venue="hibachi", maker_timeout_s=60) | {
        "paper": {"volatility": "0.000000001"}  # the tape prints nothing through the order: only the forced fills
    }
    run = engine_factory(settings, start_loop=False)
    _ready(run)
    assert run.runtime.paper is not None
    faults = run.runtime.paper.hibachi.engine.faults
    opening = run.runtime.supervisor.ref("coordinator").ask(OpenNow("BTC"), block=False)

    def rows(venue: Venue, kind: str) -> list[Any]:
        pairs = run.repo.list_pairs(None)
        return (
            [o for o in run.repo.orders_for_pair(pairs[-1].id) if o.venue is venue and o.type == kind] if pairs else []
        )

    def reserved() -> bool:
        return any(o.status == "created" for o in rows(Venue.BACKPACK, "market"))

    def resting() -> bool:
        engine = run.runtime.paper.hibachi.engine  # type: ignore[union-attr]
        with engine.lock:
            orders = [o for a in engine.accounts.values() for o in a.orders.values()]
            return any(o.order_type is OrderType.LIMIT and not o.status.is_final for o in orders)

    def hedged(n: int) -> bool:
        return sum(o.status == "filled" for o in rows(Venue.BACKPACK, "market")) >= n

    for n in range(1, 4):  # one partial fill at a time, each once the next hedge's order is recorded
        wait_until(lambda: resting() and reserved(), 10, f"a resting maker order and its hedge recorded ahead ({n})")
        faults.partial_fill_resting(1, D("0.25"))
        wait_until(functools.partial(hedged, n), 10, f"hedge {n}")
    faults.partial_fill_resting(50, D(1))  # the rest, order by order: the phase ends with its target traded
    opened = opening.get(timeout=90)
    assert isinstance(opened, PairOpened), opened
    hedges = [e for e in run.repo.list_events(opened.pair_id, limit=1000) if e.kind == "maker_hedge"]
    assert len(hedges) >= 4 and all(e.data["recorded_ahead"] for e in hedges), [e.data for e in hedges]
    assert _venue_qty(run.runtime, Venue.BACKPACK, "BTC_USDC_PERP") == run.repo.get_pair(opened.pair_id).quantity


def test_a_close_all_ends_a_maker_close_in_progress(engine_factory: Factory, caplog: Any) -> None:
    """A maker close holds the closer for up to maker_timeout_s; an operator's close-all (like a NAKED pair or a
    breached limit) raises an alarm that ends it at once, and the close goes taker."""
    settings = _settings({"open": "taker", "close": "maker_taker", "maker_venue": "hibachi", "maker_timeout_s": 600})
    run = engine_factory(settings | {"paper": {"volatility": "0.000000001"}}, start_loop=False)  # nothing fills
    _ready(run)
    opened = run.runtime.supervisor.ref("coordinator").ask(OpenNow("BTC"), timeout=90)
    assert isinstance(opened, PairOpened), opened
    from actors.messages import ClosePair

    caplog.set_level("INFO", logger="actors.closer")
    closing = run.runtime.supervisor.ref("closer").ask(ClosePair(opened.pair_id, "test"), block=False)
    engine = run.runtime.paper.hibachi.engine  # type: ignore[union-attr]

    def resting() -> bool:
        with engine.lock:
            orders = [o for a in engine.accounts.values() for o in a.orders.values()]
            return any(o.order_type is OrderType.LIMIT and not o.status.is_final for o in orders)

    wait_until(resting, 10, "the maker close's order resting")
    answered: list[Any] = []
    threading.Thread(target=lambda: answered.append(run.runtime.command("close-all", {})), daemon=True).start()
    wait_until(lambda: bool(answered), 30, "close-all answered (the maker close rests for up to 600 s)")
    assert closing.get(timeout=30).states[opened.pair_id] is PairState.CLOSED
    assert answered[0]["states"] == {}  # its own close ended first (the closer's inbox is in order): none left
    assert any("maker close: urgent work waits: close-all by operator" in r.getMessage() for r in caplog.records)
    assert _venue_qty(run.runtime, Venue.BACKPACK, "BTC_USDC_PERP") == 0
    assert _venue_qty(run.runtime, Venue.HIBACHI, "BTC/USDT-P") == 0


def test_a_close_all_closes_taker_whatever_the_close_style(engine_factory: Factory) -> None:
    """An operator's close-all (and a limit's close) means now: nothing of it rests post-only waiting for the
    market, even with a maker close style."""
    settings = _settings({"open": "taker", "close": "maker_maker", "maker_timeout_s": 600})
    run = engine_factory(settings | {"paper": {"volatility": "0.000000001"}}, start_loop=False)  # nothing fills
    _ready(run)
    opened = run.runtime.supervisor.ref("coordinator").ask(OpenNow("BTC"), timeout=90)
    assert isinstance(opened, PairOpened), opened
    answered: list[Any] = []
    threading.Thread(target=lambda: answered.append(run.runtime.command("close-all", {})), daemon=True).start()
    wait_until(lambda: bool(answered), 30, "close-all answered (a maker close would rest for up to 600 s)")
    assert answered[0]["states"] == {str(opened.pair_id): "closed"}
    closes = [o for o in run.repo.orders_for_pair(opened.pair_id) if o.purpose is OrderPurpose.CLOSE]
    assert closes and all(o.type == "market" for o in closes), closes
    closing = [e for e in run.repo.list_events(opened.pair_id, limit=100) if e.kind == "pair_closing"]
    assert closing[0].data["execution"] == "taker"
