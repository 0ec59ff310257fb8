"""The runtime end to end on paper venues: lifecycle, rollback, naked leg and repair, supervision, alerts."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

from actors.messages import OpenDeclined, OpenNow, PairFailed, PairOpened
from actors.runtime import Runtime
from core.domain import EventLevel, OrderPurpose, PairState, Side, Venue
from exchanges.base import OrderType
from tests.helpers import wait_until
from tests.system.conftest import Running

Factory = Callable[..., Running]
# One market only, so a test knows which symbols its pair trades.
BTC_ONLY = [{"name": "BTC", "backpack_symbol": "BTC_USDC_PERP", "hibachi_symbol": "BTC/USDT-P"}]


def _venue_qty(runtime: Runtime, venue: Venue, symbol: str) -> D:
    sims = {Venue.BACKPACK: runtime.paper.backpack, Venue.HIBACHI: runtime.paper.hibachi}  # type: ignore[union-attr]
    pos = sims[venue].account().positions.get(symbol)
    return pos.quantity if pos else D(0)


def _flat(runtime: Runtime) -> bool:
    sims = (runtime.paper.backpack, runtime.paper.hibachi)  # type: ignore[union-attr]
    return all(p.quantity == 0 for sim in sims for p in sim.account().positions.values())


def test_pairs_open_get_monitored_expire_and_close(engine_factory: Factory) -> None:
    # Distinct taker rates per venue (maker volume would earn 100 a USD), so each venue's points can be told apart.
    points = {
        "taker_per_usd": {"backpack": "1", "hibachi": "2"},
        "maker_per_usd": {"backpack": "100", "hibachi": "100"},
    }
    run = engine_factory({"trading": {"markets": BTC_ONLY}, "points": points})
    opened = run.wait_pair(PairState.OPEN, what="an open pair")
    legs = run.repo.positions_for_pair(opened.id)
    assert [(leg.venue, leg.side) for leg in legs] == [(Venue.BACKPACK, Side.LONG), (Venue.HIBACHI, Side.SHORT)]
    assert _venue_qty(run.runtime, Venue.BACKPACK, "BTC_USDC_PERP") == opened.quantity
    assert _venue_qty(run.runtime, Venue.HIBACHI, "BTC/USDT-P") == -opened.quantity
    assert D(2) <= opened.leverage <= D(3)
    assert all(leg.leverage_set is not None and leg.entry_price is not None for leg in legs)
    assert run.runtime.paper.hibachi.account().market_imr["BTC/USDT-P"] == (1 / opened.leverage).quantize(  # type: ignore[union-attr]
        D("0.000001"), rounding="ROUND_CEILING"
    )
    wait_until(lambda: len(run.repo.list_snapshots(opened.id)) >= 2, 20, "snapshots")
    closed = run.wait_pair(PairState.CLOSED, what="a closed pair")
    run.wait_pair(PairState.OPEN, what="the next pair after the cooldown")
    closed = run.repo.get_pair(closed.id)
    assert closed.close_reason == "duration expired"
    orders = run.repo.orders_for_pair(closed.id)
    assert sorted((o.venue, o.purpose, o.status) for o in orders) == sorted(
        [
            (Venue.BACKPACK, OrderPurpose.OPEN, "filled"),
            (Venue.BACKPACK, OrderPurpose.CLOSE, "filled"),
            (Venue.HIBACHI, OrderPurpose.OPEN, "filled"),
            (Venue.HIBACHI, OrderPurpose.CLOSE, "filled"),
        ]
    )
    fills = [f for o in orders for f in run.repo.fills_for_order(o.id)]
    assert sum(f.fee for f in fills) == closed.fees == sum(o.fee for o in orders)  # type: ignore[misc]
    assert closed.volume == sum(o.filled_quantity * o.avg_price for o in orders)  # type: ignore[operator]
    legs = run.repo.positions_for_pair(closed.id)
    assert closed.realized_pnl == sum(leg.realized_pnl for leg in legs) - closed.fees  # type: ignore[operator]
    assert all(leg.state == "closed" and leg.exit_price is not None for leg in legs)
    # The database agrees with the venues' own books: every fill of ours is there, fee for fee.
    for venue, sim in ((Venue.BACKPACK, run.runtime.paper.backpack), (Venue.HIBACHI, run.runtime.paper.hibachi)):  # type: ignore[union-attr]
        sim_fees = {f.order_id: f.fee for f in sim.account().fills}
        for o in orders:
            if o.venue is venue:
                assert sim_fees[o.venue_order_id] == o.fee
    # Market orders take: every fill is booked as the venue told it, a taker one.
    assert fills and all(f.is_maker is False for f in fills)
    close = next(e for e in run.repo.list_events(closed.id) if e.kind == "pair_closed")
    by_venue = close.data["points_by_venue"]  # the report's per-venue points
    rates = {Venue.BACKPACK: D(1), Venue.HIBACHI: D(2)}
    expected = {
        venue.value: rate * sum(o.filled_quantity * o.avg_price for o in orders if o.venue is venue)  # type: ignore[operator]
        for venue, rate in rates.items()
    }
    assert {v: D(p) for v, p in by_venue.items()} == expected and all(p > 0 for p in expected.values())
    assert closed.points == sum(expected.values())


def test_a_refused_long_leg_rolls_the_short_back(engine_factory: Factory) -> None:
    def fault(runtime: Runtime) -> None:
        runtime.paper.backpack.engine.faults.reject_orders(1, "INSUFFICIENT_MARGIN", "Not enough margin")  # type: ignore[union-attr]

    run = engine_factory({"trading": {"cooldown_min_s": 60, "cooldown_max_s": 60}}, setup=fault)
    failed = run.wait_pair(PairState.FAILED)
    assert "backpack refused the long leg: INSUFFICIENT_MARGIN Not enough margin" in (failed.close_reason or "")
    orders = run.repo.orders_for_pair(failed.id)
    rollback = [o for o in orders if o.purpose is OrderPurpose.ROLLBACK]
    assert [(o.venue, o.side, o.reduce_only, o.status) for o in rollback] == [
        (Venue.HIBACHI, Side.LONG, True, "filled")
    ]
    wait_until(lambda: _flat(run.runtime), 5, "both venues flat")  # the cooldown keeps the next pair away
    kinds = run.kinds()
    assert kinds.index("pair_rolling_back") < kinds.index("pair_failed")


def test_a_refused_short_leg_rolls_the_long_back(engine_factory: Factory) -> None:
    def fault(runtime: Runtime) -> None:
        runtime.paper.hibachi.engine.faults.reject_orders(1, 4, "Invalid quantity")  # type: ignore[union-attr]

    run = engine_factory({"trading": {"cooldown_min_s": 60, "cooldown_max_s": 60}}, setup=fault)
    failed = run.wait_pair(PairState.FAILED)
    assert "hibachi refused the short leg: 4 Invalid quantity" in (failed.close_reason or "")
    wait_until(lambda: _flat(run.runtime), 5, "both venues flat")
    rollback = [o for o in run.repo.orders_for_pair(failed.id) if o.purpose is OrderPurpose.ROLLBACK]
    assert [(o.venue, o.side) for o in rollback] == [(Venue.BACKPACK, Side.SHORT)]


def test_a_failing_rollback_leaves_the_pair_naked_until_repaired(engine_factory: Factory) -> None:
    def fault(runtime: Runtime) -> None:
        runtime.paper.hibachi.engine.faults.reject_orders(1, 4, "Invalid quantity")  # type: ignore[union-attr]
        # The rollback (three tries) and the first repairs are refused too.
        runtime.paper.backpack.engine.faults.reject_orders(5, "SERVICE_UNAVAILABLE", "Busy", reduce_only=True)  # type: ignore[union-attr]

    run = engine_factory({"trading": {"cooldown_min_s": 60, "cooldown_max_s": 60}}, setup=fault)
    naked = run.wait_pair(PairState.NAKED, what="a naked pair")
    assert (
        _venue_qty(run.runtime, Venue.BACKPACK, "BTC_USDC_PERP") > 0
        or _venue_qty(run.runtime, Venue.BACKPACK, "ETH_USDC_PERP") > 0
    )
    coordinator = run.runtime.supervisor.ref("coordinator")
    assert coordinator is not None
    declined = coordinator.ask(OpenNow(), timeout=30)
    assert isinstance(declined, OpenDeclined) and "unhedged" in declined.reason
    repaired = run.wait_pair(PairState.CLOSED, what="the repaired pair")
    assert repaired.id == naked.id
    assert _flat(run.runtime)
    kinds = run.kinds()
    story = [k for k in kinds if k in ("pair_opening", "pair_rolling_back", "pair_naked", "close_retry", "pair_closed")]
    assert story[:3] == ["pair_opening", "pair_rolling_back", "pair_naked"]
    assert story[-1] == "pair_closed"
    critical = [e for e in run.repo.list_events(naked.id) if e.level is EventLevel.CRITICAL]
    assert any(e.kind == "pair_naked" for e in critical)


def test_a_crashed_actor_is_restarted_and_trading_goes_on(engine_factory: Factory) -> None:
    run = engine_factory({"trading": {"min_duration_hours": "0.01", "max_duration_hours": "0.01"}})
    first = run.wait_pair(PairState.OPEN)
    monitor = run.runtime.supervisor.ref("monitor")
    assert monitor is not None
    monitor.tell("not a message any actor knows")  # a bug: the actor dies on it
    wait_until(lambda: run.runtime.supervisor.status()["monitor"]["restarts"] == 1, 10, "a restart")
    wait_until(lambda: run.runtime.supervisor.status()["monitor"]["alive"], 10, "the monitor back")
    before = len(run.repo.list_snapshots(first.id))
    wait_until(lambda: len(run.repo.list_snapshots(first.id)) > before, 10, "snapshots after the restart")
    status = run.runtime.command("status", {})
    assert status["actors"]["monitor"]["restarts"] == 1
    assert "unexpected message" in status["actors"]["monitor"]["last_error"]
    assert "actor_restarted" in run.kinds()


def _collateral_price(runtime: Runtime, symbol: str, target: D) -> D:
    """The price at which the Hibachi short's equity / maintenance margin equals `target`."""
    sim = runtime.paper.hibachi  # type: ignore[union-attr]
    acc = sim.account()
    pos = acc.positions[symbol]
    q, e, m = -pos.quantity, pos.entry_price, sim.engine.markets[symbol].maintenance_margin_rate
    return ((acc.collateral + q * e) / (q * (1 + target * m))).quantize(D("0.1"))


def test_a_price_jump_raises_collateral_and_divergence_alerts(engine_factory: Factory) -> None:
    overrides: dict[str, Any] = {
        "paper": {"collateral_usd": 100},
        "trading": {
            "min_duration_hours": "0.01",
            "max_duration_hours": "0.01",
            "markets": BTC_ONLY,
        },
    }
    run = engine_factory(overrides)
    pair = run.wait_pair(PairState.OPEN)
    paper = run.runtime.paper
    assert paper is not None
    paper.prices.freeze("BTC")
    paper.prices.set_price("BTC", _collateral_price(run.runtime, "BTC/USDT-P", D("1.25")))
    wait_until(lambda: "collateral_low" in run.kinds(), 10, "a collateral alert")
    alert = next(e for e in run.repo.list_events(limit=500) if e.kind == "collateral_low")
    assert alert.level is EventLevel.CRITICAL
    assert "hibachi" in alert.message and "below 1.5" in alert.message
    # A basis between the venues: the legs stop mirroring each other.
    paper.hibachi.engine.basis = D("-0.2")
    wait_until(lambda: "pnl_divergence" in run.kinds(), 10, "a divergence warning")
    warning = next(e for e in run.repo.list_events(pair.id, limit=500) if e.kind == "pnl_divergence")
    assert warning.level is EventLevel.WARNING


def test_funding_fees_volume_and_points_are_booked_per_leg_and_pair(engine_factory: Factory) -> None:
    overrides: dict[str, Any] = {
        "points": {"backpack_per_usd": "0.5", "hibachi_per_usd": "2"},
        "trading": {
            "min_duration_hours": "0.0008",
            "max_duration_hours": "0.0008",
            "cooldown_min_s": 60,
            "cooldown_max_s": 60,
            "markets": BTC_ONLY,
        },
    }
    run = engine_factory(overrides)
    pair = run.wait_pair(PairState.OPEN)
    paper = run.runtime.paper
    assert paper is not None
    due = int(run.runtime.clock.now().timestamp()) + 1
    paper.backpack.engine.schedule_funding("BTC_USDC_PERP", due)
    paper.hibachi.engine.schedule_funding("BTC/USDT-P", due)
    closed = run.wait_pair(PairState.CLOSED)
    assert closed.id == pair.id
    legs = {leg.venue: leg for leg in run.repo.positions_for_pair(pair.id)}
    paid = {
        venue: sum(f.amount for f in sim.account().funding)
        for venue, sim in ((Venue.BACKPACK, paper.backpack), (Venue.HIBACHI, paper.hibachi))
    }
    assert paid[Venue.BACKPACK] < 0 < paid[Venue.HIBACHI]  # positive rates: the long pays, the short receives
    assert {v: leg.funding for v, leg in legs.items()} == paid
    assert closed.funding == sum(paid.values())
    assert closed.realized_pnl == sum(leg.realized_pnl for leg in legs.values()) - closed.fees + closed.funding  # type: ignore[operator]
    orders = run.repo.orders_for_pair(pair.id)
    volume = {v: sum(o.filled_quantity * o.avg_price for o in orders if o.venue is v) for v in legs}  # type: ignore[misc]
    assert closed.volume == sum(volume.values())
    assert closed.points == volume[Venue.BACKPACK] * D("0.5") + volume[Venue.HIBACHI] * D(2)


def test_a_leg_closed_outside_the_farmer_turns_the_pair_naked_and_is_repaired(engine_factory: Factory) -> None:
    overrides: dict[str, Any] = {
        "trading": {
            "min_duration_hours": "0.01",
            "max_duration_hours": "0.01",
            "cooldown_min_s": 60,
            "cooldown_max_s": 60,
            "markets": BTC_ONLY,
        },
    }
    run = engine_factory(overrides)
    pair = run.wait_pair(PairState.OPEN)
    paper = run.runtime.paper
    assert paper is not None
    bp = paper.backpack
    # Someone closes the long by hand on the venue (or the venue liquidates it).
    bp.engine.place(
        bp.account(),
        symbol="BTC_USDC_PERP",
        side=Side.SHORT,
        order_type=OrderType.MARKET,
        quantity=pair.quantity,
        reduce_only=True,
    )
    run.wait_pair(PairState.NAKED, what="the pair turned naked")
    mismatch = next(e for e in run.repo.list_events(limit=500) if e.kind == "position_mismatch")
    assert mismatch.level is EventLevel.CRITICAL and "backpack BTC_USDC_PERP" in mismatch.message
    repaired = run.wait_pair(PairState.CLOSED, what="the repair")
    assert repaired.id == pair.id
    assert _flat(run.runtime)
    assert "leg_vanished" in run.kinds()
    external = [o for o in run.repo.orders_for_pair(pair.id) if o.type == "external"]
    assert [(o.venue, o.filled_quantity) for o in external] == [(Venue.BACKPACK, pair.quantity)]


def test_an_unknown_position_is_adopted_and_flattened_when_configured(engine_factory: Factory) -> None:
    def manual_trade(runtime: Runtime) -> None:
        bp = runtime.paper.backpack  # type: ignore[union-attr]
        bp.engine.place(
            bp.account(), symbol="SOL_USDC_PERP", side=Side.SHORT, order_type=OrderType.MARKET, quantity=D("3")
        )

    run = engine_factory({"reconcile": {"unknown_positions": "close"}}, setup=manual_trade)
    adopted = run.wait_pair(PairState.CLOSED, what="the adopted position flattened")
    assert adopted.market == "SOL_USDC_PERP"  # not a configured market: named by its symbol
    orders = run.repo.orders_for_pair(adopted.id)
    assert [(o.type, o.purpose, o.side, o.filled_quantity) for o in orders] == [
        ("external", OrderPurpose.OPEN, Side.SHORT, D(3)),
        ("market", OrderPurpose.REPAIR, Side.LONG, D(3)),
    ]
    assert _venue_qty(run.runtime, Venue.BACKPACK, "SOL_USDC_PERP") == 0
    kinds = run.kinds()
    assert kinds.index("position_mismatch") < kinds.index("pair_naked") < kinds.index("pair_closed")
    run.wait_pair(PairState.OPEN, what="trading going on afterwards")


def test_warnings_and_criticals_reach_the_configured_webhook(engine_factory: Factory) -> None:
    import json as _json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(_json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:

        def fault(runtime: Runtime) -> None:
            runtime.paper.backpack.engine.faults.reject_orders(1, "INSUFFICIENT_MARGIN", "Not enough margin")  # type: ignore[union-attr]

        run = engine_factory(
            {
                "alerts": {"webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook"},
                "trading": {"cooldown_min_s": 60, "cooldown_max_s": 60},
            },
            setup=fault,
        )
        run.wait_pair(PairState.FAILED)
        wait_until(lambda: any(a["kind"] == "pair_failed" for a in received), 10, "the alert for the failed pair")
        assert all(a["level"] in ("warning", "critical") for a in received)  # info events stay in the database
        failed = next(a for a in received if a["kind"] == "pair_failed")
        assert failed["source"] == "perp-farmer" and failed["pair_id"] is not None
        assert "INSUFFICIENT_MARGIN" in failed["message"]
    finally:
        server.shutdown()
        server.server_close()


def test_an_open_reports_its_timing_and_each_leg_took_only_the_requests_it_needs(engine_factory: Factory) -> None:
    run = engine_factory({"trading": {"markets": BTC_ONLY}}, start_loop=False)
    runtime = run.runtime
    wait_until(runtime.reconcile, 10, "start-up reconciliation")
    for venue in (Venue.BACKPACK, Venue.HIBACHI):
        client = runtime.supervisor.ref(f"exchange.{venue.value}").proxy().client.get()
        wait_until(client.account_stream.healthy, 10, f"{venue.value} account stream")
    opened = runtime.supervisor.ref("coordinator").ask(OpenNow("BTC"), timeout=30)
    assert isinstance(opened, PairOpened)
    timing = runtime.timings.open(opened.pair_id)
    assert timing is not None and all(leg is not None for leg in timing.legs)
    assert timing.decided_ns < min(leg.sent_ns for leg in timing.legs if leg)  # type: ignore[union-attr]
    assert timing.concluded_ns > max(leg.done_ns for leg in timing.legs if leg)  # type: ignore[union-attr]
    assert 0 <= (timing.leg_skew_ns or 0) < timing.to_wire_ns  # type: ignore[operator]
    # The order alone: its outcome and fills come from the account stream (over REST they took Backpack a
    # fill read and Hibachi a read-back and the trade journal).
    venues = [leg.venue for leg in run.repo.positions_for_pair(opened.pair_id)]
    requests = {venue: leg.requests for venue, leg in zip(venues, timing.legs, strict=True) if leg}
    assert requests == {Venue.BACKPACK: 1, Venue.HIBACHI: 1}
    event = next(e for e in run.repo.list_events(opened.pair_id) if e.kind == "pair_open")
    assert event.data["leg_skew_us"] == timing.leg_skew_ns // 1000  # type: ignore[operator]
    assert event.data["to_wire_us"] == timing.to_wire_ns // 1000  # type: ignore[operator]
    fills = [f for o in run.repo.orders_for_pair(opened.pair_id) for f in run.repo.fills_for_order(o.id)]
    assert len(fills) == 2  # recorded together with their orders' totals
    assert [f.is_maker for f in fills] == [False, False]  # the streams' maker flags reach the database


def test_a_rolled_back_open_reports_its_timing(engine_factory: Factory) -> None:
    def fault(runtime: Runtime) -> None:
        runtime.paper.hibachi.engine.faults.reject_orders(1, 4, "Invalid quantity")  # type: ignore[union-attr]

    run = engine_factory({"trading": {"markets": BTC_ONLY}}, start_loop=False, setup=fault)
    wait_until(run.runtime.reconcile, 10, "start-up reconciliation")
    failed = run.runtime.supervisor.ref("coordinator").ask(OpenNow("BTC"), timeout=30)
    assert isinstance(failed, PairFailed) and failed.state is PairState.FAILED
    timing = run.runtime.timings.open(failed.pair_id)
    assert timing is not None and timing.concluded_ns > timing.decided_ns
