"""The report's volume columns: one per traded venue, and one per other venue a pair traded on."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any, cast

from core.domain import PairState, Venue
from reports import summary

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
GAMMA = Venue("gamma")


class _Repo:
    def __init__(self, orders: dict[int, list[Any]]) -> None:
        self.orders = orders

    def list_pairs(self) -> list[Any]:  # newest first, as the repository answers
        return [
            SimpleNamespace(id=i, market="BTC", state=PairState.CLOSED, created_at=NOW, opened_at=NOW, closed_at=NOW,
                            realized_pnl=D(-1), funding=D(0), points=D(0))
            for i in sorted(self.orders, reverse=True)
        ]  # fmt: skip

    def orders_for_pair(self, pair_id: int) -> list[Any]:
        return self.orders[pair_id]


def _order(venue: Venue, quantity: str, price: str, fee: str = "0.1") -> Any:
    return SimpleNamespace(venue=venue, filled_quantity=D(quantity), avg_price=D(price), fee=D(fee), type="market")


def test_a_column_per_traded_venue_then_per_other_venue_traded_on() -> None:
    repo = _Repo(
        {
            1: [_order(Venue.BACKPACK, "1", "100"), _order(Venue.HIBACHI, "1", "101")],
            2: [_order(Venue.BACKPACK, "2", "100"), _order(GAMMA, "2", "100")],
        }
    )
    rows = summary.build(cast(Any, repo), venues=(Venue.BACKPACK, Venue.HIBACHI))
    assert [list(r.volumes) for r in rows] == [[Venue.BACKPACK, Venue.HIBACHI, GAMMA]] * 3
    assert rows[0].volumes == {Venue.BACKPACK: D(100), Venue.HIBACHI: D(101), GAMMA: D(0)}
    assert rows[-1].volumes == {Venue.BACKPACK: D(300), Venue.HIBACHI: D(101), GAMMA: D(200)}
    assert rows[-1].volume == D(601)
    total = json.loads(summary.as_json(rows))["total"]
    assert (total["volume_backpack"], total["volume_hibachi"], total["volume_gamma"]) == ("300", "101", "200")
    header = next(csv.reader(io.StringIO(summary.as_csv(rows))))
    assert header[5:8] == ["volume_backpack", "volume_hibachi", "volume_gamma"]
    assert "vol gamma" in summary.as_table(rows)


def test_traded_venues_get_their_column_even_without_volume() -> None:
    rows = summary.build(cast(Any, _Repo({})), venues=(Venue.HIBACHI, GAMMA))
    assert rows == [rows[-1]] and rows[-1].fields()["volume_hibachi"] == D(0) and "volume_gamma" in rows[-1].fields()
