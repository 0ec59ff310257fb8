"""Per-pair and total figures from the database, and their table, CSV and JSON forms.

Cost per 1M USD of volume is what a points farmer optimizes: what the pairs lost (fees, funding, spread;
a gain counts as negative cost) for every million traded.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
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
    volume_backpack: Decimal
    volume_hibachi: Decimal
    fees: Decimal
    funding: Decimal
    realized_pnl: Decimal
    points: Decimal
    cost_per_1m: Decimal | None

    @property
    def volume(self) -> Decimal:
        """Traded notional on both venues."""
        return self.volume_backpack + self.volume_hibachi


def _cost_per_1m(pnl: Decimal, volume: Decimal) -> Decimal | None:
    return None if volume == 0 else (-pnl / volume * MILLION).quantize(CENTS)


def build(repo: Queries, since: datetime | None = None) -> list[Row]:
    """A row per pair created since `since` (every pair if None), oldest first, then the total row."""
    rows: list[Row] = []
    for pair in reversed(repo.list_pairs()):
        if since is not None and pair.created_at < since:
            continue
        volume = {venue: Decimal(0) for venue in Venue}
        fees = Decimal(0)
        for order in repo.orders_for_pair(pair.id):
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
                volume[Venue.BACKPACK],
                volume[Venue.HIBACHI],
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
        sum((r.volume_backpack for r in rows), Decimal(0)),
        sum((r.volume_hibachi for r in rows), Decimal(0)),
        sum((r.fees for r in rows), Decimal(0)),
        sum((r.funding for r in rows), Decimal(0)),
        sum((r.realized_pnl for r in rows), Decimal(0)),
        sum((r.points for r in rows), Decimal(0)),
        None,
    )
    total = Row(**{**asdict(total), "cost_per_1m": _cost_per_1m(total.realized_pnl, total.volume)})
    return [*rows, total]


def load(url: str, since: datetime | None = None) -> list[Row]:
    """build() over the database at `url` opened read-only (nothing in it changes; the supervisor may run).
    Raises DatabaseProblem, one line, when it cannot be read."""
    engine = open_database_readonly(url)
    try:
        return build(Queries(engine), since)
    except SQLAlchemyError as exc:  # e.g. a corrupt page met halfway through
        raise DatabaseProblem.from_error(exc, database_label(url)) from exc
    finally:
        engine.dispose()


FIELDS = (
    "pair",
    "market",
    "state",
    "opened_at",
    "closed_at",
    "volume_backpack",
    "volume_hibachi",
    "fees",
    "funding",
    "realized_pnl",
    "points",
    "cost_per_1m",
)


def as_json(rows: list[Row]) -> str:
    """Pairs and total as one JSON object."""
    data: list[dict[str, Any]] = [jsonable(asdict(r)) for r in rows]
    return json.dumps({"pairs": data[:-1], "total": data[-1]}, indent=2)


def as_csv(rows: list[Row]) -> str:
    """One CSV line per pair and a total line."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for r in rows:
        writer.writerow(["" if v is None else jsonable(v) for v in (getattr(r, f) for f in FIELDS)])
    return out.getvalue()


def as_table(rows: list[Row]) -> str:
    """A table for a person (amounts to the cent)."""
    from control.render import table  # noqa: PLC0415

    def money(v: Decimal | None) -> str | None:
        return None if v is None else str(v.quantize(CENTS))

    body = [
        (
            r.pair,
            r.market,
            r.state,
            str(r.closed_at or "")[:16],
            money(r.volume_backpack),
            money(r.volume_hibachi),
            money(r.fees),
            money(r.funding),
            money(r.realized_pnl),
            money(r.points),
            money(r.cost_per_1m),
        )
        for r in rows
    ]
    return table(
        body,
        [
            "pair",
            "market",
            "state",
            "closed",
            "vol backpack",
            "vol hibachi",
            "fees",
            "funding",
            "pnl",
            "points",
            "cost/1M",
        ],
    )


def plot(rows: list[Row], path: str) -> None:
    """Cumulative volume, PnL and fees over time as a PNG (needs the `plot` extra: matplotlib)."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    done = sorted((r for r in rows[:-1] if r.closed_at is not None), key=lambda r: r.closed_at)  # type: ignore[arg-type,return-value]
    times = [r.closed_at for r in done]
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
