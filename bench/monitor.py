"""Sections 6 and 7: one Monitor tick with 10, 100 and 1,000 open pairs, and the control socket's `status`
round trip with those pairs in the database. The venues hold exactly what the pairs say, so every tick
does the full reading and finds nothing to act on. The pairs come from the Monitor's book in memory (the first
tick after a stage's opens re-reads them; it is not timed), a tick writes the figures of at most
actors.monitor.SNAPSHOT_PAIRS_PER_TICK pairs, and `status` lists the newest STATUS_OPEN_PAIRS live pairs."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from actors.messages import (
    BeginOpen,
    OpenBegun,
    OrderAccepted,
    PlaceOrder,
    Tick,
    TransitionPair,
    UpdateOrder,
    UpdatePosition,
    WriteBatch,
)
from actors.runtime import Runtime
from bench.report import BenchError, Figure
from bench.venues import SimProcesses, live_settings, scratch_dir, start_engine
from control.client import call
from control.server import ControlServer
from core.domain import OrderPurpose, PairState, Side, Venue
from core.ids import MAX_PAIR_ID, OrderKey
from core.ledger import OrderState, PositionState
from exchanges.registry import client_id_for
from storage.records import LegFigures, LegPlan, PairPlan

QUANTITY = Decimal("0.001")
SYMBOLS = {Venue.BACKPACK: "BTC_USDC_PERP", Venue.HIBACHI: "BTC/USDT-P"}
ONLY_BTC = {
    "markets": [{"name": "BTC", "backpack_symbol": SYMBOLS[Venue.BACKPACK], "hibachi_symbol": SYMBOLS[Venue.HIBACHI]}]
}


def _add_pairs(runtime: Runtime, count: int, price: Decimal) -> None:
    """Open pairs in the database: long Backpack, short Hibachi, filled at `price`, expiring in a year."""
    plan = PairPlan(
        "BTC",
        LegPlan(Venue.BACKPACK, SYMBOLS[Venue.BACKPACK], Side.LONG),
        LegPlan(Venue.HIBACHI, SYMBOLS[Venue.HIBACHI], Side.SHORT),
        Decimal(2),
        QUANTITY * price,
        QUANTITY,
        365 * 86400,
    )
    now = runtime.clock.now()
    leverage = ((Venue.BACKPACK, Decimal(2)), (Venue.HIBACHI, Decimal(2)))
    for _ in range(count):
        begun: OpenBegun = runtime.desk.write(BeginOpen(plan, leverage))
        filled = [
            UpdateOrder(
                o.venue, o.client_id, OrderState.FILLED, filled_quantity=QUANTITY, avg_price=price, fee=Decimal(0)
            )
            for o in begun.orders
        ]
        figures = LegFigures(QUANTITY, price, fees=Decimal(0), state=PositionState.OPEN)
        opened = TransitionPair(
            begun.pair_id,
            PairState.OPENING,
            PairState.OPEN,
            "bench",
            changes={"opened_at": now, "expires_at": now.replace(year=now.year + 1), "quantity": QUANTITY},
        )
        runtime.desk.write(WriteBatch((*filled, *(UpdatePosition(leg.id, figures) for leg in begun.legs), opened)))


def _top_up_venues(runtime: Runtime, count: int, stage: int) -> None:
    """Give each venue the position the new pairs account for (one order per venue)."""
    for venue, side in ((Venue.BACKPACK, Side.LONG), (Venue.HIBACHI, Side.SHORT)):
        key = OrderKey(MAX_PAIR_ID - stage, side, OrderPurpose.OPEN, 0)
        client_id = client_id_for(venue, key, runtime.repo.client_id_namespace)
        order = PlaceOrder(client_id, SYMBOLS[venue], side, QUANTITY * count)
        reply = runtime.directory.get(f"exchange.{venue.value}").ask(order, timeout=60)
        if not isinstance(reply, OrderAccepted) or reply.filled_quantity != QUANTITY * count:
            raise BenchError(f"{venue}: the bench's position was not filled: {reply}")


def _tick_ms(monitor: Any, runtime: Runtime) -> float:
    started = time.perf_counter()
    monitor.ask(Tick(runtime.clock.now()), timeout=600)
    return (time.perf_counter() - started) * 1000


def run(sims: SimProcesses, sizes: tuple[int, ...], ticks: int, status_calls: int) -> list[Figure]:
    """Grow the book through `sizes`, timing `ticks` Monitor ticks at each; then `status` over the socket."""
    sims.set_latency(0)
    data_dir = scratch_dir()
    runtime = start_engine(live_settings(sims, data_dir, {"trading": ONLY_BTC}))
    figures: list[Figure] = []
    server = None
    try:
        monitor = runtime.supervisor.ref("monitor")
        price = Decimal(sims.state(Venue.BACKPACK)["marks"][SYMBOLS[Venue.BACKPACK]])
        have = 0
        for stage, size in enumerate(sizes):
            _add_pairs(runtime, size - have, price)
            _top_up_venues(runtime, size - have, stage)
            have = size
            _tick_ms(monitor, runtime)  # the first reading after a change confirms it, and reads the new pairs
            durations = [_tick_ms(monitor, runtime) for _ in range(ticks)]
            if runtime.repo.list_pairs([PairState.NAKED]) or runtime.gate.blocks:
                raise BenchError(f"the Monitor found a difference with {size} pairs: {runtime.gate.blocks}")
            figures.append(
                Figure.spread(
                    "6 monitor tick",
                    f"{size:,} open pairs",
                    durations,
                    "ms",
                    f"{sum(durations) / len(durations) / size:.2f} ms per pair",
                )
            )
        address = f"ipc://{data_dir}/bench.ipc"
        server = ControlServer(address, runtime.command).start()
        call(address, "status")
        round_trips = []
        for _ in range(status_calls):
            started = time.perf_counter()
            reply = call(address, "status", timeout_s=60)
            round_trips.append((time.perf_counter() - started) * 1000)
            if not reply.get("ok"):
                raise BenchError(f"status failed: {reply}")
        figures.append(
            Figure.spread(
                "7 control", f"`status` round trip, {have:,} open pairs", round_trips, "ms", "nng ipc, JSON reply"
            )
        )
    finally:
        if server is not None:
            server.stop()
        runtime.shutdown()
    return figures
