"""The report's volume columns (one per traded venue, and one per other venue a pair traded on) and its
per-venue figures: maker and taker volume, fees, funding, points, cost per 1M and points per USD of cost."""

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
    def __init__(
        self,
        orders: dict[int, list[Any]],
        *,
        fills: dict[int, list[Any]] | None = None,
        legs: dict[int, list[Any]] | None = None,
        events: dict[int, list[Any]] | None = None,
        points: D = D(0),
    ) -> None:
        self.orders, self.fills, self.legs, self.events = orders, fills or {}, legs or {}, events or {}
        self.points = points

    def list_pairs(self) -> list[Any]:  # newest first, as the repository answers
        return [
            SimpleNamespace(id=i, account="default", market="BTC", state=PairState.CLOSED, created_at=NOW,
                            opened_at=NOW, closed_at=NOW, realized_pnl=D(-1), funding=D(0), points=self.points)
            for i in sorted(self.orders, reverse=True)
        ]  # fmt: skip

    def orders_for_pair(self, pair_id: int) -> list[Any]:
        return self.orders[pair_id]

    def fills_for_order(self, order_id: int) -> list[Any]:
        return self.fills.get(order_id, [])

    def positions_for_pair(self, pair_id: int) -> list[Any]:
        return self.legs.get(pair_id, [])

    def list_events(self, pair_id: int, limit: int = 100) -> list[Any]:
        return self.events.get(pair_id, [])[:limit]


_ids = iter(range(1, 1_000_000))


def _order(venue: Venue, quantity: str, price: str, fee: str = "0.1", order_id: int | None = None) -> Any:
    return SimpleNamespace(id=order_id or next(_ids), venue=venue, filled_quantity=D(quantity), avg_price=D(price),
                           fee=D(fee), type="market")  # fmt: skip


def _fill(quantity: str, is_maker: bool | None) -> Any:
    return SimpleNamespace(quantity=D(quantity), is_maker=is_maker)


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


def _two_venue_repo(*, events: bool) -> _Repo:
    """Pair 1: Backpack bought 2 at 100 (1 of it as maker), fee 0.3; Hibachi sold 2 at 100 as taker, fee 0.5.
    Funding: Backpack paid 0.2, Hibachi received 0.1. 40 points, 30 of them on Backpack per the close event."""
    close = SimpleNamespace(kind="pair_closed", data={"points_by_venue": {"backpack": "30", "hibachi": "10"}})
    return _Repo(
        {1: [_order(Venue.BACKPACK, "2", "100", "0.3", 101), _order(Venue.HIBACHI, "2", "100", "0.5", 102)]},
        fills={101: [_fill("1", True), _fill("1", False)], 102: [_fill("2", False)]},
        legs={1: [SimpleNamespace(venue=Venue.BACKPACK, funding=D("-0.2")),
                  SimpleNamespace(venue=Venue.HIBACHI, funding=D("0.1"))]},
        events={1: [SimpleNamespace(kind="pair_opened", data={}), close]} if events else {},
        points=D(40),
    )  # fmt: skip


def test_per_venue_maker_and_taker_volume_fees_funding_points_and_ratios() -> None:
    rows = summary.build(cast(Any, _two_venue_repo(events=True)), venues=(Venue.BACKPACK, Venue.HIBACHI))
    bp, hb = rows[-1].by_venue[Venue.BACKPACK], rows[-1].by_venue[Venue.HIBACHI]
    assert (bp.maker_volume, bp.taker_volume, bp.fees, bp.funding, bp.points) == (D(100), D(100), D("0.3"),
                                                                                    D("-0.2"), D(30))  # fmt: skip
    assert (hb.maker_volume, hb.taker_volume, hb.fees, hb.funding, hb.points) == (D(0), D(200), D("0.5"),
                                                                                    D("0.1"), D(10))  # fmt: skip
    assert bp.cost == D("0.5") and hb.cost == D("0.4")  # fees less funding received
    venues = {v["venue"]: v for v in json.loads(summary.as_json(rows))["venues"]}
    assert venues["backpack"]["cost_per_1m"] == "2500.00"  # 0.5 on 200 of volume
    assert venues["backpack"]["points_per_usd_cost"] == "60.0000"  # 30 points for 0.5
    assert venues["hibachi"]["cost_per_1m"] == "2000.00" and venues["hibachi"]["points_per_usd_cost"] == "25.0000"
    assert (venues["hibachi"]["maker_volume"], venues["hibachi"]["taker_volume"]) == ("0", "200")
    # The pair's own ratio: 40 points for the 1 USD it lost.
    assert json.loads(summary.as_json(rows))["total"]["points_per_usd_cost"] == "40.0000"
    table = summary.as_table(rows)
    assert "per venue" in table and "points/USD cost" in table and "60.0000" in table


def test_pairs_closed_before_per_venue_points_split_theirs_by_volume() -> None:
    rows = summary.build(cast(Any, _two_venue_repo(events=False)), venues=(Venue.BACKPACK, Venue.HIBACHI))
    by_venue = rows[0].by_venue
    assert (by_venue[Venue.BACKPACK].points, by_venue[Venue.HIBACHI].points) == (D(20), D(20))


def test_a_venue_that_earned_more_than_it_cost_has_no_points_per_cost() -> None:
    repo = _Repo({1: [_order(Venue.BACKPACK, "1", "100", "0.1")]},
                 legs={1: [SimpleNamespace(venue=Venue.BACKPACK, funding=D(1))]}, points=D(5))  # fmt: skip
    (figures,) = summary.build(cast(Any, repo), venues=(Venue.BACKPACK,))[-1].by_venue.values()
    assert figures.cost == D("-0.9") and figures.fields()["points_per_usd_cost"] is None
    assert figures.fields()["cost_per_1m"] == D("-9000.00")  # a gain is a negative cost
