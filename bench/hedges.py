"""Section 9: maker_taker opens, each maker fill hedged at once on the other venue. From the fill heard on the
maker venue's account stream to the hedge's order request on the wire, and to the hedge filled, against one
venue round trip (issue 16: to the wire p99 < 5 ms, to filled p99 < 1.5 round trips).

Fills come from the maker venue's simulator (a separate process): a driver process watches its resting orders
through the admin endpoint and, once one rests, jumps the price through it (a buy's bid falls below it, a
sell's ask rises above it), so the simulator's tape fills it at its next tick and pushes the fill on the
account stream as a venue would; once filled the price is jumped back. The random walk fills some too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

from actors.messages import ClosePair, CloseResult, OpenNow, PairOpened
from bench.report import BenchError, Figure, percentile
from bench.venues import ROOT, SimProcesses, live_settings, scratch_dir, start_engine
from core.domain import OrderPurpose, PairState, Venue

SECTION = "9 maker hedge"
MARKET = "BTC"
ASK_TIMEOUT_S = 120.0
# Well past the walk's own step (0.02% a quarter second): a jump always trades through a resting order.
JUMP_PCT = Decimal("0.05")
POLL_S = 0.05  # each look serializes the whole order list on the simulators' core: not too often
SETTLE_S = 0.1  # after a fill, before the price goes back: the hedge is on the simulators' core meanwhile
FILL_WAIT_S = 1.0  # a jumped-through order fills at the simulator's next tick (its publisher runs every 50 ms)
TARGET_TO_WIRE_MS = 5.0
TARGET_ROUND_TRIPS = 1.5
# Eight resting chunks per open: many fills per open, and its cost (leverage, plan, close) spread over them.
NOTIONAL_USD = 200
MAX_UNHEDGED_USD = 25


def jump_pct(side: str, pct: Decimal = JUMP_PCT) -> Decimal:
    """The jump (percent) that trades through a resting order of `side`: down under a buy, up over a sell."""
    return -pct if side == "long" else pct


def undo_pct(pct: Decimal) -> Decimal:
    """The jump (percent) that takes a price moved by `pct` percent back where it was."""
    return (1 / (1 + pct / 100) - 1) * 100


def resting_order(state: dict[str, Any], done: set[str]) -> dict[str, Any] | None:
    """An order of the simulator's state that rests untouched (status new, nothing filled) and was not driven
    yet; None when there is none."""
    for account in state["accounts"].values():
        for order in account["orders"]:
            if order["status"] == "new" and Decimal(order["filled"]) == 0 and order["id"] not in done:
                return order
    return None


@dataclass
class Driver:
    """A process of its own (it stands in for the market, so its CPU is not the engine's: on the simulators'
    core when they are pinned) that jumps the maker venue's price through each order resting there, then back."""

    sims: SimProcesses
    venue: Venue
    jumps: int = 0
    unfilled: int = 0  # jumped through, not filled within FILL_WAIT_S (cancelled first, or a slow tick)
    _proc: subprocess.Popen[str] | None = None

    def start(self) -> Driver:
        """Spawn the process; it drives until its stdin closes."""
        admin = self.sims.endpoints[self.venue]["admin"]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.hedges", admin],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(self._proc.pid, os.sched_getaffinity(self.sims.procs[0].pid))
        return self

    def close(self) -> None:
        """Stop the process and read its counts."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        out, _ = proc.communicate("", timeout=30)  # stdin closed: it finishes its order and prints its counts
        if proc.returncode != 0 or not out.strip():
            raise BenchError(f"fill driver failed (exit {proc.returncode})")
        counts = json.loads(out.strip().splitlines()[-1])
        self.jumps, self.unfilled = counts["jumps"], counts["unfilled"]

    def kill(self) -> None:
        """End the process at once (the run failed)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None


def drive(admin: str, stop: threading.Event) -> dict[str, int]:
    """The driver's loop against one simulator's admin endpoint, until `stop`; returns its counts."""
    session = requests.Session()

    def state() -> dict[str, Any]:
        reply = session.get(admin, timeout=10)
        reply.raise_for_status()
        result: dict[str, Any] = reply.json()
        return result

    def jump(pct: Decimal) -> None:
        session.post(
            f"{admin}/fault", json={"kind": "jump", "asset": MARKET, "pct": str(pct)}, timeout=10
        ).raise_for_status()

    done: set[str] = set()
    counts = {"jumps": 0, "unfilled": 0}
    while not stop.is_set():
        order = resting_order(state(), done)
        if order is None:
            time.sleep(POLL_S)
            continue
        done.add(order["id"])
        pct = jump_pct(order["side"])
        jump(pct)
        counts["jumps"] += 1
        deadline = time.monotonic() + FILL_WAIT_S
        while _status(state(), order["id"]) == "new":
            if time.monotonic() > deadline:
                counts["unfilled"] += 1
                break
            time.sleep(POLL_S)
        time.sleep(SETTLE_S)
        jump(undo_pct(pct))
    return counts


def _main(admin: str) -> int:
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    print(json.dumps(drive(admin, stop)), flush=True)
    return 0


def _status(state: dict[str, Any], order_id: str) -> str | None:
    for account in state["accounts"].values():
        for order in account["orders"]:
            if order["id"] == order_id:
                return str(order["status"])
    return None


def run(
    sims: SimProcesses, hedges: int, latency_s: float, maker: Venue = Venue.HIBACHI, warmup: int = 8
) -> list[Figure]:
    """Open (maker_taker, `maker` resting) and close pairs until `hedges` hedges past the first `warmup`."""
    other = Venue.BACKPACK if maker is Venue.HIBACHI else Venue.HIBACHI
    execution = {
        "open": "maker_taker",
        "close": "taker",
        "maker_venue": maker.value,
        "max_unhedged_usd": MAX_UNHEDGED_USD,
        "imbalance_usd": MAX_UNHEDGED_USD,
        "maker_timeout_s": 30,
        "poll_s": "0.2",  # a touch read in the jumped window is corrected this soon
    }
    settings = live_settings(sims, scratch_dir(), {"trading": {"notional_usd": NOTIONAL_USD, "execution": execution}})
    engine = start_engine(settings)
    driver = Driver(sims, maker)
    pairs: list[int] = []
    started = time.monotonic()
    try:
        sims.set_latency(latency_s)
        coordinator: Any = engine.supervisor.ref("coordinator")
        closer: Any = engine.supervisor.ref("closer")
        driver.start()
        while len(engine.timings.hedges) < warmup + hedges:
            reply = coordinator.ask(OpenNow(MARKET), timeout=ASK_TIMEOUT_S)
            if not isinstance(reply, PairOpened):
                raise BenchError(f"maker open failed: {reply}")
            pairs.append(reply.pair_id)
            result: CloseResult = closer.ask(ClosePair(reply.pair_id, "bench"), timeout=ASK_TIMEOUT_S)
            if result.states.get(reply.pair_id) is not PairState.CLOSED:
                raise BenchError(f"pair {reply.pair_id} did not close: {result}")
            if time.monotonic() - started > 600:
                raise BenchError(f"only {len(engine.timings.hedges)} hedges in 10 minutes")
        driver.close()
        samples = list(engine.timings.hedges)[warmup:]
        round_trips = _round_trips(engine, other, pairs)
    finally:
        driver.kill()
        engine.shutdown()
    elapsed = time.monotonic() - started
    return figures(samples, round_trips, latency_s, len(pairs), elapsed, driver)


def _round_trips(engine: Any, venue: Venue, pairs: list[int]) -> list[tuple[float, int]]:
    """Each taker open order on the hedging venue (the hedges): its request's round trip (ms) and requests."""
    found: list[tuple[float, int]] = []
    for pair_id in pairs:
        for order in engine.repo.orders_for_pair(pair_id):
            if order.venue is not venue or order.purpose is not OrderPurpose.OPEN:
                continue
            wire = engine.timings.wire(venue, order.client_id)
            if wire is not None:
                found.append(((wire.answered_ns - wire.sent_ns) / 1e6, wire.requests))
    return found


def figures(
    samples: list[tuple[int | None, int | None]],
    round_trips: list[tuple[float, int]],
    latency_s: float,
    opens: int,
    elapsed_s: float,
    driver: Driver,
) -> list[Figure]:
    """The section's rows from the hedges' (to wire, to filled) in ns and the hedge orders' round trips."""
    to_wire = [w / 1e6 for w, _ in samples if w is not None]
    to_filled = [f / 1e6 for _, f in samples if f is not None]
    if not to_wire or not to_filled or not round_trips:
        raise BenchError(f"no complete hedge timing among {len(samples)} hedges")
    rts = [rt for rt, _ in round_trips]
    floor = percentile(rts, 50)
    wire_p99, filled_p99 = percentile(to_wire, 99), percentile(to_filled, 99)
    ratio = filled_p99 / floor
    single = 100 * sum(1 for _, n in round_trips if n == 1) / len(round_trips)
    lat = f"{latency_s * 1000:g} ms venues"
    return [
        Figure.spread(SECTION, "fill heard -> hedge on the wire", to_wire, "ms", _verdict(wire_p99, TARGET_TO_WIRE_MS)),
        Figure.spread(SECTION, "fill heard -> hedge filled", to_filled, "ms", lat),
        Figure.spread(
            SECTION, "floor: one venue round trip (hedge order request)", rts, "ms", f"{single:.0f}% order only"
        ),
        Figure.single(
            SECTION,
            "hedge filled p99 / round trip (p50)",
            ratio,
            "x",
            len(to_filled),
            _verdict(ratio, TARGET_ROUND_TRIPS, "RT"),
        ),
        Figure.single(
            SECTION,
            "run",
            elapsed_s,
            "s",
            len(samples),
            f"{opens} opens, {driver.jumps} price jumps through a resting order ({driver.unfilled} not filled)",
        ),
    ]


def _verdict(value: float, target: float, unit: str = "ms") -> str:
    return f"target p99 < {target:g} {unit}: {'holds' if value < target else 'MISSED'}"


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
