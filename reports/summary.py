"""Per-pair, per-venue and total figures from the database, and their table, CSV and JSON forms.

Cost per 1M USD of volume is what a points farmer optimizes: what the pairs lost (fees, funding, spread;
a gain counts as negative cost) for every million traded. Points per USD of cost is its other side.

Spread is what each fill paid against its venue's mid at the decision it carried out (the mids the opening and
closing events record): sign x (fill price - mid) x quantity, + for a buy, - for a sell; > 0 paid (bought above
or sold below the mid), < 0 earned (a maker fill at the touch earns half the spread). Orders sent before the
pair's close decision are priced against the opening mids, orders sent at or after it against the closing mids.
Volume with no mid recorded for its venue and phase (pairs written before the mids were, a quote not read) has
no spread: it is counted as the venue's spread_unpriced_volume, never as a spread of 0.

A venue's own cost is fees less funding received plus spread. The rest of a hedged pair's price PnL belongs to
the pair, not to either venue (one leg's loss is the other's gain). The pair's realized PnL already holds its
spread (a part of the price PnL, measured against the decision mid), so the pair and total rows' cost, taken
from realized PnL, is unchanged by it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from core.domain import Side, Venue
from core.points import SideVolume, order_sides
from storage.checks import DatabaseProblem, database_label
from storage.db import open_database_readonly
from storage.queries import Queries
from storage.records import jsonable

MILLION = Decimal(1_000_000)
CENTS = Decimal("0.01")
RATIO = Decimal("0.0001")
CLOSE_EVENT = "pair_closed"  # the closer's event, whose data holds each venue's points
OPENING_EVENT = "pair_opening"  # the open decision's event, whose data["mid"] holds each venue's mid then
CLOSING_EVENT = "pair_closing"  # the close decision's event, the same for the close
PAIR_EVENTS = 1_000_000  # list_events() gives the latest 100 by default; a pair's decisions are among its first


@dataclass(frozen=True, slots=True)
class VenueFigures:
    """One venue's figures over the report's pairs."""

    venue: Venue
    maker_volume: Decimal = Decimal(0)
    taker_volume: Decimal = Decimal(0)  # with volume no fill said was maker
    fees: Decimal = Decimal(0)
    funding: Decimal = Decimal(0)  # > 0 received
    points: Decimal = Decimal(0)
    spread: Decimal = Decimal(0)  # > 0 paid against the decision mids, < 0 earned
    spread_unpriced_volume: Decimal = Decimal(0)  # volume with no mid to price its spread against

    @property
    def volume(self) -> Decimal:
        """Maker and taker volume."""
        return self.maker_volume + self.taker_volume

    @property
    def cost(self) -> Decimal:
        """What trading on the venue cost: fees less funding received, plus spread paid."""
        return self.fees - self.funding + self.spread

    def __add__(self, other: VenueFigures) -> VenueFigures:
        return VenueFigures(
            self.venue,
            self.maker_volume + other.maker_volume,
            self.taker_volume + other.taker_volume,
            self.fees + other.fees,
            self.funding + other.funding,
            self.points + other.points,
            self.spread + other.spread,
            self.spread_unpriced_volume + other.spread_unpriced_volume,
        )

    def fields(self) -> dict[str, Any]:
        """The venue's figures as flat named values (the JSON keys and table columns)."""
        head = {"venue": self.venue.value, "maker_volume": self.maker_volume, "taker_volume": self.taker_volume}
        money = {"volume": self.volume, "fees": self.fees, "funding": self.funding, "spread": self.spread}
        money |= {"spread_unpriced_volume": self.spread_unpriced_volume, "points": self.points}
        ratios = {"cost_per_1m": _cost_per_1m(-self.cost, self.volume)}
        return head | money | {"cost": self.cost} | ratios | {"points_per_usd_cost": _per_cost(self.points, self.cost)}


@dataclass(frozen=True, slots=True)
class Row:
    """One pair, or the total."""

    pair: str
    market: str
    state: str
    opened_at: datetime | None
    closed_at: datetime | None
    volumes: dict[Venue, Decimal]  # traded notional per venue: every venue of the report, 0 where none
    fees: Decimal
    funding: Decimal
    realized_pnl: Decimal
    points: Decimal
    cost_per_1m: Decimal | None
    # Per venue: the pair's own figures (the total row's are the sum over every pair).
    by_venue: dict[Venue, VenueFigures] = field(default_factory=dict)
    account: str | None = None  # set when the report spans several accounts (a fleet's): a column of its own

    @property
    def volume(self) -> Decimal:
        """Traded notional on every venue."""
        return sum(self.volumes.values(), Decimal(0))

    def fields(self) -> dict[str, Any]:
        """The row as flat named values, a `volume_<venue>` and a `spread_<venue>` per venue (the JSON, CSV and
        table columns); its spread_unpriced_volume is over every venue."""
        head: dict[str, Any] = {"pair": self.pair}
        if self.account is not None:
            head["account"] = self.account
        head |= {"market": self.market, "state": self.state}
        head |= {"opened_at": self.opened_at, "closed_at": self.closed_at}
        volumes: dict[str, Any] = {f"volume_{venue}": v for venue, v in self.volumes.items()}
        for venue in self.volumes:  # the same columns on every row: a venue the pair did not trade spread 0
            volumes[f"spread_{venue}"] = self.by_venue[venue].spread if venue in self.by_venue else Decimal(0)
        unpriced = sum((f.spread_unpriced_volume for f in self.by_venue.values()), Decimal(0))
        volumes["spread_unpriced_volume"] = unpriced
        tail = {"fees": self.fees, "funding": self.funding, "realized_pnl": self.realized_pnl, "points": self.points}
        ratios = {"cost_per_1m": self.cost_per_1m, "points_per_usd_cost": _per_cost(self.points, -self.realized_pnl)}
        return head | volumes | tail | ratios


def _per_cost(points: Decimal, cost: Decimal) -> Decimal | None:
    """Points per USD of cost; None where nothing was lost (the ratio means nothing there)."""
    return None if cost <= 0 else (points / cost).quantize(RATIO)


def _cost_per_1m(pnl: Decimal, volume: Decimal) -> Decimal | None:
    return None if volume == 0 else (-pnl / volume * MILLION).quantize(CENTS)


def _venue_columns(venues: Sequence[Venue], seen: Iterable[Venue]) -> list[Venue]:
    """The report's venues: the given ones (the traded venues, in their order), then any other a pair used."""
    return [*venues, *sorted(set(seen) - set(venues))]


def _venue_points(events: list[Any], pair: Any, figures: dict[Venue, VenueFigures]) -> dict[Venue, Decimal]:
    """Each venue's share of the pair's points: as the closer recorded them, or (a pair closed before it did)
    the points split by each venue's share of the volume."""
    if not pair.points:
        return {}
    for event in events:
        by_venue = event.data.get("points_by_venue") if event.kind == CLOSE_EVENT else None
        if isinstance(by_venue, dict):
            return {Venue(v): Decimal(p) for v, p in by_venue.items()}
    volume = sum((f.volume for f in figures.values()), Decimal(0))
    return {} if volume == 0 else {v: pair.points * f.volume / volume for v, f in figures.items()}


def _decision_mids(event: Any | None) -> dict[str, Decimal]:
    """The venue mids a decision's event recorded (venue name -> mid); none for a venue recorded without a usable
    one, nor for a pair written before the mids were."""
    raw = event.data.get("mid") if event is not None else None
    mids: dict[str, Decimal] = {}
    for venue, value in (raw if isinstance(raw, dict) else {}).items():
        try:
            mid = Decimal(value) if isinstance(value, str | int) else None
        except InvalidOperation:
            mid = None
        if mid is not None and mid.is_finite() and mid > 0:
            mids[venue] = mid
    return mids


@dataclass(frozen=True, slots=True)
class _Mids:
    """One pair's venue mids at its open and its close decisions, and when the close was decided (None: never)."""

    opening: dict[str, Decimal]
    closing: dict[str, Decimal]
    closing_at: datetime | None

    @classmethod
    def of(cls, events: list[Any]) -> _Mids:
        """From the pair's events: one of each decision at most (a pair passes each state once)."""
        decisions = {e.kind: e for e in events if e.kind in (OPENING_EVENT, CLOSING_EVENT)}
        opening, closing = decisions.get(OPENING_EVENT), decisions.get(CLOSING_EVENT)
        closing_at = closing.ts if closing is not None else None
        return cls(_decision_mids(opening), _decision_mids(closing), closing_at)

    def of_order(self, order: Any) -> Decimal | None:
        """The mid an order's spread is priced against: the close's for an order sent at or after the close
        decision, the open's for any other (a rollback or a repair of the open too); None when not recorded."""
        after_close = self.closing_at is not None and order.created_at >= self.closing_at
        return (self.closing if after_close else self.opening).get(order.venue.value)


def _spread(order: Any, fills: list[Any], mid: Decimal) -> Decimal:
    """What an order paid against `mid` in USD (< 0 earned): each recorded fill at its price, and any filled
    quantity no fill records at the order's average price."""
    paid = sum(((f.price - mid) * f.quantity for f in fills), Decimal(0))
    unrecorded = order.filled_quantity - sum((f.quantity for f in fills), Decimal(0))
    if unrecorded > 0:
        paid += (order.avg_price - mid) * unrecorded
    return paid if order.side is Side.LONG else -paid


def _pair_venues(repo: Queries, pair: Any, orders: list[Any], columns: list[Venue]) -> dict[Venue, VenueFigures]:
    """One pair's figures per venue: volume by side from its orders' fills, fees, spread against the decision
    mids, its legs' funding, points."""
    figures = {venue: VenueFigures(venue) for venue in columns}
    events = repo.list_events(pair.id, limit=PAIR_EVENTS)
    mids = _Mids.of(events)
    for order in orders:
        sides, spread, unpriced = SideVolume(), Decimal(0), Decimal(0)
        if order.filled_quantity and order.avg_price is not None and order.type != "external":
            volume = order.filled_quantity * order.avg_price
            fills = repo.fills_for_order(order.id)
            sides = order_sides(order.filled_quantity, volume, fills)
            mid = mids.of_order(order)
            if mid is None:
                unpriced = volume
            else:
                spread = _spread(order, fills, mid)
        fee = order.fee or Decimal(0)
        mine = VenueFigures(order.venue, sides.maker, sides.taker, fee, spread=spread, spread_unpriced_volume=unpriced)
        figures[order.venue] += mine
    for leg in repo.positions_for_pair(pair.id):
        mine = figures.setdefault(leg.venue, VenueFigures(leg.venue))
        figures[leg.venue] = mine + VenueFigures(leg.venue, funding=leg.funding or Decimal(0))
    points = _venue_points(events, pair, figures)
    return {v: replace(f, points=points.get(v, Decimal(0))) for v, f in figures.items()}


def build(repo: Queries, since: datetime | None = None, venues: Sequence[Venue] = ()) -> list[Row]:
    """A row per pair created since `since` (every pair if None), oldest first, then the total row; a volume
    column per venue of `venues` (trading.venues) and per other venue a pair traded on."""
    rows: list[Row] = []
    pairs = [p for p in reversed(repo.list_pairs()) if since is None or p.created_at >= since]
    orders = {p.id: repo.orders_for_pair(p.id) for p in pairs}
    columns = _venue_columns(venues, (o.venue for per in orders.values() for o in per))
    fleet = len({p.account for p in pairs}) > 1
    for pair in pairs:
        by_venue = _pair_venues(repo, pair, orders[pair.id], columns)
        volume = {venue: by_venue[venue].volume for venue in columns}
        fees = sum((f.fees for f in by_venue.values()), Decimal(0))
        pnl = pair.realized_pnl if pair.realized_pnl is not None else -fees
        rows.append(
            Row(
                str(pair.id),
                pair.market,
                pair.state.value,
                pair.opened_at,
                pair.closed_at,
                volume,
                fees,
                pair.funding or Decimal(0),
                pnl,
                pair.points or Decimal(0),
                _cost_per_1m(pnl, sum(volume.values(), Decimal(0))),
                by_venue,
                pair.account if fleet else None,
            )
        )
    venue_totals = {venue: VenueFigures(venue) for venue in columns}
    for r in rows:
        for venue, f in r.by_venue.items():
            venue_totals[venue] = venue_totals.get(venue, VenueFigures(venue)) + f
    total = Row(
        "total",
        "",
        f"{len(rows)} pairs",
        None,
        None,
        {venue: sum((r.volumes[venue] for r in rows), Decimal(0)) for venue in columns},
        sum((r.fees for r in rows), Decimal(0)),
        sum((r.funding for r in rows), Decimal(0)),
        sum((r.realized_pnl for r in rows), Decimal(0)),
        sum((r.points for r in rows), Decimal(0)),
        None,
        venue_totals,
        f"{len({r.account for r in rows})} accounts" if fleet else None,
    )
    total = replace(total, cost_per_1m=_cost_per_1m(total.realized_pnl, total.volume))
    return [*rows, total]


def load(
    url: str, since: datetime | None = None, venues: Sequence[Venue] = (), account: str | None = None
) -> list[Row]:
    """build() over the database at `url` opened read-only (nothing in it changes; the supervisor may run): the
    pairs of every account, or of `account` only. Raises DatabaseProblem, one line, when it cannot be read."""
    engine = open_database_readonly(url)
    try:
        return build(Queries(engine, account=account), since, venues)
    except SQLAlchemyError as exc:  # e.g. a corrupt page met halfway through
        raise DatabaseProblem.from_error(exc, database_label(url)) from exc
    finally:
        engine.dispose()


def _fields(rows: list[Row]) -> list[str]:
    return list(rows[-1].fields())  # every row has the total's columns


def as_json(rows: list[Row]) -> str:
    """Pairs and total as one JSON object."""
    data: list[dict[str, Any]] = [jsonable(r.fields()) for r in rows]
    venues = [jsonable(f.fields()) for f in rows[-1].by_venue.values()]
    return json.dumps({"pairs": data[:-1], "total": data[-1], "venues": venues}, indent=2)


def as_csv(rows: list[Row]) -> str:
    """One CSV line per pair and a total line."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_fields(rows))
    for r in rows:
        writer.writerow(["" if v is None else jsonable(v) for v in r.fields().values()])
    return out.getvalue()


def as_table(rows: list[Row]) -> str:
    """A table for a person (amounts to the cent)."""
    from control.render import table  # noqa: PLC0415

    def money(v: Decimal | None) -> str | None:
        return None if v is None else str(v.quantize(CENTS))

    venues = list(rows[-1].volumes)
    fleet = rows[-1].account is not None
    body = [
        (
            r.pair,
            *((r.account,) if fleet else ()),
            r.market,
            r.state,
            str(r.closed_at or "")[:16],
            *(money(r.volumes[v]) for v in venues),
            money(r.fees),
            money(r.funding),
            money(r.realized_pnl),
            money(r.points),
            money(r.cost_per_1m),
        )
        for r in rows
    ]
    heads = ["pair", *(("account",) if fleet else ()), "market", "state", "closed", *(f"vol {v}" for v in venues)]
    pairs = table(body, [*heads, "fees", "funding", "pnl", "points", "cost/1M"])
    return f"{pairs}\n\nper venue\n{_venue_table(rows[-1], money)}"


def _venue_table(total: Row, money: Callable[[Decimal | None], str | None]) -> str:
    """The total row's per-venue figures, one line per venue."""
    from control.render import table  # noqa: PLC0415

    body = [
        (
            str(f.venue),
            money(f.maker_volume),
            money(f.taker_volume),
            money(f.fees),
            money(f.funding),
            money(f.spread),
            money(f.spread_unpriced_volume),
            money(f.points),
            money(f.cost),
            money(_cost_per_1m(-f.cost, f.volume)),
            _per_cost(f.points, f.cost),
        )
        for f in total.by_venue.values()
    ]
    heads = ["venue", "maker vol", "taker vol", "fees", "funding", "spread", "unpriced vol", "points", "cost"]
    heads += ["cost/1M", "points/USD cost"]
    return table(body, heads)


def plot(rows: list[Row], path: str) -> None:
    """Cumulative volume, PnL and fees over time as a PNG (needs the `plot` extra: matplotlib)."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    closed = sorted(((r.closed_at, r) for r in rows[:-1] if r.closed_at is not None), key=lambda tr: tr[0])
    times = [t for t, _ in closed]
    done = [r for _, r in closed]
    volume = pnl = fees = Decimal(0)
    series: dict[str, list[float]] = {"volume": [], "pnl": [], "fees": []}
    for r in done:
        volume, pnl, fees = volume + r.volume, pnl + r.realized_pnl, fees + r.fees
        series["volume"].append(float(volume))  # plotting only: floats are fine here
        series["pnl"].append(float(pnl))
        series["fees"].append(float(fees))
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    top.plot(times, series["volume"], label="cumulative volume (USD)")
    top.legend()
    bottom.plot(times, series["pnl"], label="cumulative realized PnL (USD)")
    bottom.plot(times, series["fees"], label="cumulative fees (USD)")
    bottom.legend()
    figure.suptitle("perp-farmer")
    figure.savefig(path)
    plt.close(figure)
