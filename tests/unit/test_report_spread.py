"""The report's per-venue spread: each fill priced against its venue's mid at the open or close decision, in a
database written through the PersistenceWriter's own code; volume with no mid to price it is counted apart."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal as D
from typing import Any

from actors.messages import BeginOpen, OpenBegun, RecordFills, RecordOrder, TransitionPair, UpdateOrder
from core.clock import FakeClock
from core.domain import OrderPurpose, PairState, Side, Venue
from core.ledger import OrderState
from reports import summary
from storage.queries import Queries
from storage.records import LegPlan, NewFill, NewOrder, PairPlan
from tests.writing import write

BP, HB = Venue.BACKPACK, Venue.HIBACHI
VENUES = (BP, HB)
PLAN = PairPlan(
    market="BTC",
    long=LegPlan(BP, "BTC_USDC_PERP", Side.LONG),
    short=LegPlan(HB, "BTC/USDT-P", Side.SHORT),
    leverage=D("2"),
    notional=D("200"),
    quantity=D("2"),
    duration_s=3600,
)
LEVERAGE = ((BP, D("2")), (HB, D("2")))
# Opening: Backpack 99.9/100.1 (mid 100), Hibachi 100.85/101.15 (mid 101). Closing: Backpack mid 110, Hibachi 111.
OPEN_MIDS = ((BP, D("100")), (HB, D("101")))
CLOSE_MIDS = {"backpack": D("110"), "hibachi": D("111")}


class _Pair:
    """Writes one pair's rows as the writer would: its open, its orders, their fills, its moves."""

    def __init__(self, repo: Queries, clock: FakeClock, mids: tuple[tuple[Venue, D], ...]) -> None:
        self.repo, self.clock = repo, clock
        begun = write(repo.engine, clock, BeginOpen(PLAN, LEVERAGE, mids, execution="maker_taker"))
        assert isinstance(begun, OpenBegun) and begun.orders == ()  # a maker style records its own orders
        self.pair_id = begun.pair_id
        self.legs = {leg.venue: leg for leg in begun.legs}

    def order(
        self,
        venue: Venue,
        side: Side,
        purpose: OrderPurpose,
        avg: str,
        fills: tuple[tuple[str, str, bool], ...] = (),
        *,
        order_type: str = "market",
        fee: str = "0",
    ) -> None:
        """One order filled PLAN.quantity at `avg`; `fills` (price, quantity, maker) as the venue reported them."""
        client_id = f"{self.pair_id}-{venue}-{purpose}-{len(self.repo.orders_for_pair(self.pair_id))}"
        leg = self.legs[venue]
        new = NewOrder(self.pair_id, leg.id, venue, client_id, purpose, 0, side, order_type, PLAN.quantity)
        write(self.repo.engine, self.clock, RecordOrder(new))
        filled = UpdateOrder(venue, client_id, OrderState.FILLED, filled_quantity=PLAN.quantity, avg_price=D(avg),
                             fee=D(fee))  # fmt: skip
        write(self.repo.engine, self.clock, filled)
        now = self.clock.now()
        recorded = tuple(
            NewFill(venue, client_id, f"{client_id}-{i}", D(p), D(q), D(0), now, is_maker=maker)
            for i, (p, q, maker) in enumerate(fills)
        )
        if recorded:
            write(self.repo.engine, self.clock, RecordFills(recorded))

    def move(self, expected: PairState, to: PairState, **data: Any) -> None:
        """The pair's state move, with its event's data (the close decision's mids)."""
        write(self.repo.engine, self.clock, TransitionPair(self.pair_id, expected, to, "test", data=data))


def _opened(repo: Queries, clock: FakeClock, mids: tuple[tuple[Venue, D], ...] = OPEN_MIDS) -> _Pair:
    """Long Backpack bought 2 at the ask 100.1 as taker (paid 0.1 x 2 = 0.2 against mid 100); short Hibachi sold
    2 at the ask 101.15 as maker (earned 0.15 x 2 = 0.3 against mid 101)."""
    pair = _Pair(repo, clock, mids)
    clock.advance(1)
    pair.order(BP, Side.LONG, OrderPurpose.OPEN, "100.1", (("100.1", "2", False),), fee="0.02")
    pair.order(HB, Side.SHORT, OrderPurpose.OPEN, "101.15", (("101.15", "2", True),), order_type="limit", fee="0.01")
    pair.move(PairState.OPENING, PairState.OPEN)
    return pair


def _closed(pair: _Pair, close_mids: dict[str, D]) -> None:
    """Closed at the decision's own time: Backpack sold 2 in two fills at 109.9 and 109.8 (paid 0.1 + 0.2 = 0.3
    against mid 110); Hibachi bought 2 at 111.2 with no fill recorded (paid 0.2 x 2 = 0.4 against mid 111)."""
    pair.clock.advance(60)
    pair.move(PairState.OPEN, PairState.CLOSING, mid=close_mids)
    # No clock step: orders sent at the very time of the close decision are the close's.
    pair.order(BP, Side.SHORT, OrderPurpose.CLOSE, "109.85", (("109.9", "1", False), ("109.8", "1", False)), fee="0.03")
    pair.order(HB, Side.LONG, OrderPurpose.CLOSE, "111.2", fee="0.03")
    pair.move(PairState.CLOSING, PairState.CLOSED)


def _venues(rows: list[summary.Row]) -> dict[Venue, summary.VenueFigures]:
    return rows[-1].by_venue


def test_each_fill_pays_or_earns_against_its_venues_mid_at_the_decision(repo: Queries, clock: FakeClock) -> None:
    _opened(repo, clock)
    rows = summary.build(repo, venues=VENUES)
    # Bought at the ask: paid; sold at the ask as maker: earned. A wrong sign gives -0.2 and +0.3.
    assert (_venues(rows)[BP].spread, _venues(rows)[HB].spread) == (D("0.2"), D("-0.3"))
    assert _venues(rows)[BP].spread_unpriced_volume == _venues(rows)[HB].spread_unpriced_volume == D(0)


def test_the_close_is_priced_against_the_close_decisions_mids(repo: Queries, clock: FakeClock) -> None:
    _closed(_opened(repo, clock), CLOSE_MIDS)
    rows = summary.build(repo, venues=VENUES)
    bp, hb = _venues(rows)[BP], _venues(rows)[HB]
    # Backpack: 0.2 at the open + 0.3 at the close (priced against the open's mid 100 the close would be -19.7).
    # Hibachi: -0.3 at the open + 0.4 at the close, its unrecorded fills at the order's average price.
    assert (bp.spread, hb.spread) == (D("0.5"), D("0.1"))
    assert (rows[0].by_venue[BP].spread, rows[0].by_venue[HB].spread) == (D("0.5"), D("0.1"))
    # The venue's cost includes it: fees less funding (none) plus spread.
    assert (bp.fees, hb.fees) == (D("0.05"), D("0.04"))
    assert (bp.cost, hb.cost) == (D("0.55"), D("0.14"))
    assert bp.volume == D("419.9")  # 2 x 100.1 + 2 x 109.85
    fields = bp.fields()
    assert fields["cost_per_1m"] == (D("0.55") / D("419.9") * 1_000_000).quantize(D("0.01"))
    assert fields["spread"] == D("0.5") and fields["cost"] == D("0.55")


def test_a_repair_of_the_open_is_priced_against_the_open_and_external_orders_never_count(
    repo: Queries, clock: FakeClock
) -> None:
    pair = _opened(repo, clock)
    pair.clock.advance(5)
    # Before any close decision: the open's mid (100). Sold 2 at 99.8: paid 0.2 x 2 = 0.4.
    pair.order(BP, Side.SHORT, OrderPurpose.REPAIR, "99.8", (("99.8", "2", False),))
    pair.order(BP, Side.LONG, OrderPurpose.REPAIR, "150", order_type="external")  # someone else's: no spread
    _closed(pair, CLOSE_MIDS)
    bp = _venues(summary.build(repo, venues=VENUES))[BP]
    assert bp.spread == D("0.2") + D("0.4") + D("0.3")
    assert bp.volume == D("419.9") + D("199.6") and bp.spread_unpriced_volume == D(0)


def test_volume_with_no_mid_is_unpriced_not_a_spread_of_zero(repo: Queries, clock: FakeClock) -> None:
    _closed(_opened(repo, clock, mids=()), CLOSE_MIDS)  # a pair written before the mids were
    only_backpack = _opened(repo, clock, mids=OPEN_MIDS[:1])  # Hibachi's quote not read at the open
    _closed(only_backpack, {"backpack": D("110")})  # nor at the close
    rows = summary.build(repo, venues=VENUES)
    first, second = rows[0].by_venue, rows[1].by_venue
    # The first pair's open has no mid: its open volume is unpriced; its close still has spread.
    assert (first[BP].spread, first[BP].spread_unpriced_volume) == (D("0.3"), D("200.2"))
    assert (first[HB].spread, first[HB].spread_unpriced_volume) == (D("0.4"), D("202.3"))
    # The second: Backpack priced throughout, Hibachi nowhere.
    assert (second[BP].spread, second[BP].spread_unpriced_volume) == (D("0.5"), D(0))
    assert (second[HB].spread, second[HB].spread_unpriced_volume) == (D(0), D("202.3") + D("222.4"))
    hb = _venues(rows)[HB]
    assert (hb.spread, hb.spread_unpriced_volume) == (D("0.4"), D("202.3") * 2 + D("222.4"))
    assert rows[1].fields()["spread_unpriced_volume"] == D("424.7")


def _d(*values: str) -> tuple[D, ...]:
    """Text amounts (JSON, CSV) as Decimals: equal however many zeros the text keeps."""
    return tuple(D(v) for v in values)


def test_json_csv_and_table_carry_the_spread(repo: Queries, clock: FakeClock) -> None:
    _closed(_opened(repo, clock), CLOSE_MIDS)
    _opened(repo, clock, mids=())  # open, unpriced: 200.2 on Backpack, 202.3 on Hibachi
    rows = summary.build(repo, venues=VENUES)
    data = json.loads(summary.as_json(rows))
    venues = {v["venue"]: v for v in data["venues"]}
    assert _d(venues["backpack"]["spread"], venues["backpack"]["spread_unpriced_volume"]) == (D("0.5"), D("200.2"))
    assert _d(venues["hibachi"]["spread"], venues["hibachi"]["spread_unpriced_volume"]) == (D("0.1"), D("202.3"))
    # Fees 0.05 + 0.02 and 0.04 + 0.01 (the second pair's open), plus each venue's spread.
    assert _d(venues["backpack"]["cost"], venues["hibachi"]["cost"]) == (D("0.57"), D("0.15"))
    assert _d(data["total"]["spread_backpack"], data["total"]["spread_hibachi"]) == (D("0.5"), D("0.1"))
    assert _d(data["total"]["spread_unpriced_volume"], data["pairs"][1]["spread_unpriced_volume"]) == (D("402.5"),) * 2
    lines = list(csv.DictReader(io.StringIO(summary.as_csv(rows))))
    spreads = [(r["pair"], *_d(r["spread_backpack"], r["spread_hibachi"], r["spread_unpriced_volume"])) for r in lines]
    assert spreads == [
        ("1", D("0.5"), D("0.1"), D(0)),
        ("2", D(0), D(0), D("402.5")),
        ("total", D("0.5"), D("0.1"), D("402.5")),
    ]
    table = summary.as_table(rows).split("per venue")[1].splitlines()
    head = next(line for line in table if "venue" in line).split()
    assert head[:8] == ["venue", "maker", "vol", "taker", "vol", "fees", "funding", "spread"]
    backpack = next(line for line in table if line.lstrip().startswith("backpack")).split()
    assert backpack[5:8] == ["0.50", "200.20", "0.00"]  # spread, unpriced volume, points


def test_the_pairs_own_cost_is_its_realized_pnl_which_already_holds_the_spread(repo: Queries, clock: FakeClock) -> None:
    pair = _opened(repo, clock)
    pair.clock.advance(60)
    pair.move(PairState.OPEN, PairState.CLOSING, mid=CLOSE_MIDS)
    pair.order(BP, Side.SHORT, OrderPurpose.CLOSE, "109.85", (("109.9", "1", False), ("109.8", "1", False)))
    pair.order(HB, Side.LONG, OrderPurpose.CLOSE, "111.2")
    write(repo.engine, clock, TransitionPair(pair.pair_id, PairState.CLOSING, PairState.CLOSED, "test",
                                             changes={"realized_pnl": D("-0.7")}))  # fmt: skip
    rows = summary.build(repo, venues=VENUES)
    assert rows[0].realized_pnl == rows[-1].realized_pnl == D("-0.7")
    assert rows[0].cost_per_1m == (D("0.7") / rows[0].volume * 1_000_000).quantize(D("0.01"))  # no spread added
    assert sum((f.spread for f in _venues(rows).values()), D(0)) == D("0.6")
