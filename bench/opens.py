"""Sections 1-4: leg skew, the engine's own time around an open, open and rollback latency against one
venue round trip, and the same opens sent one leg after the other (what most bots do), in the same run."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from actors.coordinator import HedgeCoordinator
from actors.messages import ClosePair, CloseResult, OpenNow, PairFailed, PairOpened, PlaceOrder
from actors.timing import OpenTiming
from actors.trader import Outcome
from bench.report import BenchError, Figure, percentile
from bench.venues import SimProcesses, live_settings, scratch_dir, start_engine
from core.domain import PairState, Venue
from storage.records import OrderRecord, PositionRecord

MARKET = "BTC"
REJECT_CODES = {Venue.BACKPACK: "INVALID_ORDER", Venue.HIBACHI: 4}
ASK_TIMEOUT_S = 120.0


class SequentialCoordinator(HedgeCoordinator):
    """The baseline: the same coordinator, but the second leg is sent only once the first has answered."""

    def _send_legs(
        self, legs: list[PositionRecord], records: list[OrderRecord], orders: list[PlaceOrder]
    ) -> list[Outcome]:
        return [
            self.trader.outcome(leg, record, order, self.desk.ask_venue_async(leg.venue, order))
            for leg, record, order in zip(legs, records, orders, strict=True)
        ]


@dataclass
class Samples:
    """Timings of one way of opening, in microseconds."""

    skew: list[float] = field(default_factory=list)
    arrival_skew: list[float] = field(default_factory=list)
    to_wire: list[float] = field(default_factory=list)
    to_commit: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    round_trip: list[float] = field(default_factory=list)
    requests: dict[str, list[int]] = field(default_factory=dict)

    def add(self, timing: OpenTiming, venues: list[Venue]) -> None:
        """Take one open's timing."""
        us = 1000.0
        assert timing.leg_skew_ns is not None and timing.to_wire_ns is not None and timing.to_commit_ns is not None
        self.skew.append(timing.leg_skew_ns / us)
        if timing.arrival_skew_ns is not None:
            self.arrival_skew.append(timing.arrival_skew_ns / us)
        self.to_wire.append(timing.to_wire_ns / us)
        self.to_commit.append(timing.to_commit_ns / us)
        self.total.append((timing.concluded_ns - timing.decided_ns) / us)
        for venue, leg in zip(venues, timing.legs, strict=True):
            assert leg is not None
            self.round_trip.append((leg.answered_ns - leg.sent_ns) / us)
            self.requests.setdefault(venue.value, []).append(leg.requests)


def _open(ref: Any, engine: Any) -> tuple[PairOpened | PairFailed, list[Venue]]:
    reply = ref.ask(OpenNow(MARKET), timeout=ASK_TIMEOUT_S)
    if not isinstance(reply, PairOpened | PairFailed):
        raise BenchError(f"open declined: {reply}")
    venues = [leg.venue for leg in engine.repo.positions_for_pair(reply.pair_id)]
    return reply, venues


def _close(closer: Any, pair_id: int) -> None:
    result: CloseResult = closer.ask(ClosePair(pair_id, "bench"), timeout=ASK_TIMEOUT_S)
    if result.states.get(pair_id) is not PairState.CLOSED:
        raise BenchError(f"pair {pair_id} did not close: {result}")


def run(sims: SimProcesses, opens: int, rollbacks: int, latency_s: float, warmup: int = 3) -> list[Figure]:
    """Open and close `opens` pairs each way (alternating), then `rollbacks` opens with one leg refused."""
    engine = start_engine(live_settings(sims, scratch_dir()))
    sequential = SequentialCoordinator.start(
        "coordinator.sequential",
        0,
        engine.clock,
        None,
        desk=engine.desk,
        gate=engine.gate,
        limits=engine.limits,
        rng=random.Random(5),
    )
    try:
        sims.set_latency(latency_s)
        concurrent_ref, closer = engine.supervisor.ref("coordinator"), engine.supervisor.ref("closer")
        ways = {"concurrent": (concurrent_ref, Samples()), "sequential": (sequential, Samples())}
        for i in range(warmup + opens):
            order = ("concurrent", "sequential") if i % 2 == 0 else ("sequential", "concurrent")
            for way in order:
                ref, samples = ways[way]
                reply, venues = _open(ref, engine)
                if not isinstance(reply, PairOpened):
                    raise BenchError(f"{way} open failed without a fault: {reply}")
                timing = engine.timings.open(reply.pair_id)
                if i >= warmup and timing is not None:
                    samples.add(timing, venues)
                _close(closer, reply.pair_id)
        rollback_us: list[float] = []
        for i in range(rollbacks):
            refused = Venue.BACKPACK if i % 2 == 0 else Venue.HIBACHI
            sims.fault(
                refused,
                {"kind": "reject", "code": REJECT_CODES[refused], "message": "bench", "count": 1, "reduce_only": False},
            )
            reply, _ = _open(concurrent_ref, engine)
            timing = engine.timings.open(reply.pair_id)
            if not isinstance(reply, PairFailed) or reply.state is not PairState.FAILED or timing is None:
                raise BenchError(f"expected a rolled-back open, got {reply}")
            rollback_us.append((timing.concluded_ns - timing.decided_ns) / 1000)
    finally:
        sequential.stop()
        engine.shutdown()
    return _figures(ways["concurrent"][1], ways["sequential"][1], rollback_us, latency_s)


def _figures(c: Samples, s: Samples, rollback_us: list[float], latency_s: float) -> list[Figure]:
    ms = 1000.0
    lat = f"{latency_s * 1000:.0f} ms venues"
    f = [
        Figure.spread("1 leg skew", "both legs at once: requests leaving the process", c.skew, "µs"),
        Figure.spread(
            "1 leg skew",
            "both legs at once: requests reaching the venues",
            c.arrival_skew,
            "µs",
            "stamped by the simulators",
        ),
        Figure.spread(
            "2 open overhead",
            "decision -> both requests on the wire",
            [x / ms for x in c.to_wire],
            "ms",
            "venue latency excluded",
        ),
        Figure.spread(
            "2 open overhead",
            "last venue reply -> OPEN committed",
            [x / ms for x in c.to_commit],
            "ms",
            "venue latency excluded",
        ),
        Figure.spread(
            "3 latency", "floor: one venue round trip (the order request)", [x / ms for x in c.round_trip], "ms", lat
        ),
        Figure.spread("3 latency", "open: decision -> OPEN committed", [x / ms for x in c.total], "ms", lat),
    ]
    if rollback_us:
        f.append(
            Figure.spread(
                "3 latency",
                "rollback: decision -> FAILED committed",
                [x / ms for x in rollback_us],
                "ms",
                f"one leg refused, the other filled and closed; {lat}",
            )
        )
    floor = percentile(c.round_trip, 50)
    f.append(
        Figure.single(
            "3 latency", "open / floor (p50)", percentile(c.total, 50) / floor, "x", len(c.total), _requests_note(c)
        )
    )
    f += [
        Figure.spread("4 baseline", "one leg after the other: leg skew", [x / ms for x in s.skew], "ms"),
        Figure.spread("4 baseline", "one leg after the other: open latency", [x / ms for x in s.total], "ms", lat),
        Figure.single(
            "4 baseline",
            "leg skew ratio, sequential / concurrent (p50)",
            percentile(s.skew, 50) / percentile(c.skew, 50),
            "x",
            len(s.skew),
        ),
        Figure.single(
            "4 baseline",
            "open latency ratio, sequential / concurrent (p50)",
            percentile(s.total, 50) / percentile(c.total, 50),
            "x",
            len(s.total),
        ),
    ]
    return f


def _requests_note(c: Samples) -> str:
    # A leg that needed nothing but its order request was settled from the venue's account stream (a filled
    # order settled over REST reads its fills or reads it back).
    parts = [
        f"{venue} {percentile(n, 50):.0f} ({100 * sum(1 for x in n if x == 1) / len(n):.0f}% order only)"
        for venue, n in sorted(c.requests.items())
    ]
    return "venue requests per leg: " + ", ".join(parts)
