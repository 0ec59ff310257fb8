"""What one simulated style cost and how well it stayed hedged, read from its database after the run: volume,
fees, funding and spread per `reports.summary.build`, maker hedges from their `maker_hedge` events, NAKED pairs
from their `pair_naked` events."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from core.domain import PairState, Venue
from reports.summary import MILLION, Row, VenueFigures, build
from storage.queries import Queries

HEDGE_EVENT = "maker_hedge"
NAKED_EVENT = "pair_naked"
ALL_EVENTS = 1_000_000  # list_events' limit: every event of a pair
CENTS = Decimal("0.01")
RATIO = Decimal("0.0001")


def percentile(values: Sequence[int], pct: int) -> int | None:
    """The nearest-rank percentile of `values` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _ms(us: int | None) -> Decimal | None:
    return None if us is None else (Decimal(us) / 1000).quantize(Decimal("0.001"))


def spread_of(f: VenueFigures) -> Decimal:
    """The venue's spread cost; 0 until reports.summary carries one."""
    spread = getattr(f, "spread", Decimal(0))
    return spread if isinstance(spread, Decimal) else Decimal(0)


def venue_cost(figures: Iterable[VenueFigures]) -> Decimal:
    """Fees less funding received, plus spread paid, over `figures`."""
    return sum((f.fees - f.funding + spread_of(f) for f in figures), Decimal(0))


@dataclass
class Hedges:
    """The maker hedges of a run, from their events."""

    count: int = 0
    heard_to_wire_us: list[int] = field(default_factory=list)
    heard_to_filled_us: list[int] = field(default_factory=list)
    unhedged_usd_s: Decimal = Decimal(0)

    def add(self, data: dict[str, Any]) -> None:
        """One `maker_hedge` event's data."""
        self.count += 1
        for key, into in (("heard_to_wire_us", self.heard_to_wire_us), ("heard_to_filled_us", self.heard_to_filled_us)):
            value = data.get(key)
            if isinstance(value, int):
                into.append(value)
        if data.get("unhedged_usd_s") is not None:
            self.unhedged_usd_s += Decimal(str(data["unhedged_usd_s"]))


@dataclass
class StyleFigures:
    """One style's run: the row `simulate` prints for it (and, in `curve`, what --plot draws)."""

    style: str
    pairs: int
    closed: int
    open_at_end: int
    naked_ever: int  # pairs that were NAKED at some point (a pair_naked event)
    naked_at_end: int
    maker_volume: Decimal
    taker_volume: Decimal
    fees: Decimal
    funding: Decimal  # > 0 received
    spread: Decimal
    cost: Decimal  # fees - funding + spread
    cost_per_1m: Decimal | None
    points: Decimal
    points_per_usd_cost: Decimal | None
    hedges: int
    hedge_filled_p50_ms: Decimal | None
    hedge_filled_p99_ms: Decimal | None
    hedge_wire_p50_ms: Decimal | None
    hedge_wire_p99_ms: Decimal | None
    unhedged_usd_s: Decimal
    peak_unhedged_usd: Decimal  # measured on the simulators, every step
    engine_peak_unhedged_usd: Decimal  # the engine's own (core.activity)
    max_unhedged_usd: Decimal  # the setting the peak is checked against
    steps: int
    idle_steps: int  # of them, long steps taken at rest
    cap_hits: int  # steps whose wait for the engine hit the real-time cap (should be 0)
    final_marks: dict[str, Decimal]
    curve: list[tuple[Decimal, Decimal]]  # (cumulative volume, cumulative cost) after each pair
    wall_s: float = 0.0  # real seconds the run took (never compared)

    @property
    def volume(self) -> Decimal:
        """Maker and taker volume."""
        return self.maker_volume + self.taker_volume

    def warnings(self) -> list[str]:
        """What a reader must not miss: exposure past the setting, forced steps, naked pairs."""
        found = []
        if self.peak_unhedged_usd > self.max_unhedged_usd:
            found.append(
                f"{self.style}: peak unhedged {self.peak_unhedged_usd.quantize(CENTS)} USD exceeds "
                f"trading.execution.max_unhedged_usd = {self.max_unhedged_usd}"
            )
        if self.cap_hits:
            found.append(f"{self.style}: {self.cap_hits} step(s) hit the wait cap (time passed with work pending)")
        if self.naked_ever:
            found.append(f"{self.style}: {self.naked_ever} pair(s) went NAKED")
        return found

    def as_json(self) -> dict[str, Any]:
        """Every field, Decimals as strings, plus the volume and the warnings."""
        data = asdict(self)
        data["volume"] = self.volume
        data["warnings"] = self.warnings()
        return _strings(data)


def _strings(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strings(v) for v in value]
    return value


def _curve(rows: list[Row]) -> list[tuple[Decimal, Decimal]]:
    volume = cost = Decimal(0)
    points = []
    for row in sorted(rows, key=lambda r: int(r.pair)):
        volume += row.volume
        cost += venue_cost(row.by_venue.values())
        points.append((volume, cost))
    return points


def measure(repo: Queries, venues: Sequence[Venue], style: str, run: dict[str, Any]) -> StyleFigures:
    """The figures of one finished run from its database; `run` carries what the driver measured itself
    (peak_unhedged_usd, engine_peak_unhedged_usd, max_unhedged_usd, steps, cap_hits, final_marks, wall_s)."""
    rows = build(repo, venues=venues)
    pairs, total = rows[:-1], rows[-1]
    by_venue = list(total.by_venue.values())
    hedges = Hedges()
    naked_ever = 0
    for pair in repo.list_pairs():
        events = repo.list_events(pair.id, limit=ALL_EVENTS)
        naked_ever += any(e.kind == NAKED_EVENT for e in events)
        for event in reversed(events):  # oldest first
            if event.kind == HEDGE_EVENT:
                hedges.add(event.data)
    states = repo.count_pairs_by_state()
    maker = sum((f.maker_volume for f in by_venue), Decimal(0))
    taker = sum((f.taker_volume for f in by_venue), Decimal(0))
    cost = venue_cost(by_venue)
    points = sum((f.points for f in by_venue), Decimal(0))
    volume = maker + taker
    return StyleFigures(
        style=style,
        pairs=len(pairs),
        closed=states.get(PairState.CLOSED, 0),
        open_at_end=sum(n for s, n in states.items() if not s.is_terminal),
        naked_ever=naked_ever,
        naked_at_end=states.get(PairState.NAKED, 0),
        maker_volume=maker,
        taker_volume=taker,
        fees=sum((f.fees for f in by_venue), Decimal(0)),
        funding=sum((f.funding for f in by_venue), Decimal(0)),
        spread=sum((spread_of(f) for f in by_venue), Decimal(0)),
        cost=cost,
        cost_per_1m=None if volume == 0 else (cost / volume * MILLION).quantize(CENTS),
        points=points,
        points_per_usd_cost=None if cost <= 0 else (points / cost).quantize(RATIO),
        hedges=hedges.count,
        hedge_filled_p50_ms=_ms(percentile(hedges.heard_to_filled_us, 50)),
        hedge_filled_p99_ms=_ms(percentile(hedges.heard_to_filled_us, 99)),
        hedge_wire_p50_ms=_ms(percentile(hedges.heard_to_wire_us, 50)),
        hedge_wire_p99_ms=_ms(percentile(hedges.heard_to_wire_us, 99)),
        unhedged_usd_s=hedges.unhedged_usd_s,
        curve=_curve(pairs),
        **run,
    )
