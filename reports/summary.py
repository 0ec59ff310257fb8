"""Per-pair and total figures from the database, and their table, CSV and JSON forms.

Cost per 1M USD of volume is what a points farmer optimizes: what the pairs lost (fees, funding, spread;
a gain counts as negative cost) for every million traded.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from core.domain import Venue
from storage.checks import DatabaseProblem, database_label
from storage.db import open_database_readonly
from storage.queries import Queries
from storage.records import jsonable

MILLION = Decimal(1_000_000)
CENTS = Decimal("0.01")


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

    @property
    def volume(self) -> Decimal:
        """Traded notional on every venue."""
        return sum(self.volumes.values(), Decimal(0))

    def fields(self) -> dict[str, Any]:
        """The row as flat named values, a `volume_<venue>` per venue (the JSON, CSV and table columns)."""
        head: dict[str, Any] = {"pair": self.pair, "market": self.market, "state": self.state}
        head |= {"opened_at": self.opened_at, "closed_at": self.closed_at}
        volumes = {f"volume_{venue}": v for venue, v in self.volumes.items()}
        tail = {"fees": self.fees, "funding": self.funding, "realized_pnl": self.realized_pnl, "points": self.points}
        return head | volumes | tail | {"cost_per_1m": self.cost_per_1m}


def _cost_per_1m(pnl: Decimal, volume: Decimal) -> Decimal | None:
    return None if volume == 0 else (-pnl / volume * MILLION).quantize(CENTS)


def _venue_columns(venues: Sequence[Venue], seen: Iterable[Venue]) -> list[Venue]:
    """The report's venues: the given ones (the traded venues, in their order), then any other a pair used."""
    return [*venues, *sorted(set(seen) - set(venues))]


def build(repo: Queries, since: datetime | None = None, venues: Sequence[Venue] = ()) -> list[Row]:
    """A row per pair created since `since` (every pair if None), oldest first, then the total row; a volume
    column per venue of `venues` (trading.venues) and per other venue a pair traded on."""
    rows: list[Row] = []
    pairs = [p for p in reversed(repo.list_pairs()) if since is None or p.created_at >= since]
    orders = {p.id: repo.orders_for_pair(p.id) for p in pairs}
    columns = _venue_columns(venues, (o.venue for per in orders.values() for o in per))
    for pair in pairs:
        volume = dict.fromkeys(columns, Decimal(0))
        fees = Decimal(0)
        for order in orders[pair.id]:
            if order.filled_quantity and order.avg_price is not None and order.type != "external":
                volume[order.venue] += order.filled_quantity * order.avg_price
            fees += order.fee or Decimal(0)
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
            )
        )
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
    )
    total = replace(total, cost_per_1m=_cost_per_1m(total.realized_pnl, total.volume))
    return [*rows, total]


def load(url: str, since: datetime | None = None, venues: Sequence[Venue] = ()) -> list[Row]:
    """build() over the database at `url` opened read-only (nothing in it changes; the supervisor may run).
    Raises DatabaseProblem, one line, when it cannot be read."""
    engine = open_database_readonly(url)
    try:
        return build(Queries(engine), since, venues)
    except SQLAlchemyError as exc:  # e.g. a corrupt page met halfway through
        raise DatabaseProblem.from_error(exc, database_label(url)) from exc
    finally:
        engine.dispose()


def _fields(rows: list[Row]) -> list[str]:
    return list(rows[-1].fields())  # every row has the total's columns


def as_json(rows: list[Row]) -> str:
    """Pairs and total as one JSON object."""
    data: list[dict[str, Any]] = [jsonable(r.fields()) for r in rows]
    return json.dumps({"pairs": data[:-1], "total": data[-1]}, indent=2)


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
    body = [
        (
            r.pair,
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
    heads = ["pair", "market", "state", "closed", *(f"vol {v}" for v in venues)]
    return table(body, [*heads, "fees", "funding", "pnl", "points", "cost/1M"])


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
