"""The pre-flight rules and the canary's arithmetic on plain numbers: each verdict, and the numbers behind it."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from core.clock import FakeClock
from core.config import MarketConfig, TradingConfig, UnknownPositions, load_settings
from core.domain import Side, Venue
from core.planning import VenueView
from core.sizing import QuantityRules, hedge_quantity
from live import costs, rules
from live.preflight import as_json, as_lines, exit_status
from live.probe import read_database
from live.rules import CheckResult, Status
from storage.db import open_database
from storage.records import LegPlan, PairPlan
from storage.writes import Writes

BTC = MarketConfig(name="BTC", symbols={Venue.BACKPACK: "BTC_USDC_PERP", Venue.HIBACHI: "BTC/USDT-P"})
TRADING = TradingConfig(
    min_leverage=D(2), max_leverage=D(3), notional_usd=D(100), collateral_buffer=D("1.25"), markets=(BTC,)
)


def view(venue: Venue, *, mark: str = "50000", step: str = "0.00001", min_q: str = "0.00001", min_notional: str = "0",
         max_lev: str = "20", available: str = "10000") -> VenueView:  # fmt: skip
    symbol = BTC.symbol(venue)
    return VenueView(venue, symbol, D(mark), D(step), D(min_q), D(min_notional), D(max_lev), D(available))


def pair_views(**hibachi: str) -> dict[Venue, VenueView | str]:
    return {Venue.BACKPACK: view(Venue.BACKPACK), Venue.HIBACHI: view(Venue.HIBACHI, **hibachi)}


# ---- clock -----------------------------------------------------------------------------------------------


def test_clock_beyond_the_window_fails_and_names_the_venue() -> None:
    result = rules.clock(Venue.BACKPACK, offset_ms=-6000, round_trip_ms=10, window_ms=5000)
    assert (result.name, result.status) == ("clock.backpack", Status.FAIL)
    assert result.numbers["margin_ms"] == "-1010"


def test_clock_within_the_window_passes_with_its_margin() -> None:
    result = rules.clock(Venue.HIBACHI, offset_ms=40, round_trip_ms=20, window_ms=15000)
    assert result.status is Status.PASS
    assert result.numbers == {"offset_ms": "40", "round_trip_ms": "20", "window_ms": "15000", "margin_ms": "14940"}


def test_clock_a_second_off_warns_even_inside_a_wide_window() -> None:
    assert rules.clock(Venue.HIBACHI, offset_ms=1500, round_trip_ms=5, window_ms=15000).status is Status.WARN


# ---- markets and sizing --------------------------------------------------------------------------------------


def test_market_passes_with_the_planners_quantity() -> None:
    result = rules.market(BTC, TRADING, pair_views())
    assert result.status is Status.PASS
    expected = hedge_quantity(D(100), D(50000), [QuantityRules("b", D("0.00001"), D("0.00001"))])
    assert D(result.numbers["quantity"]) == expected == D("0.002")


def test_unknown_market_fails_with_the_venues_reason() -> None:
    views = pair_views()
    views[Venue.HIBACHI] = "BTC/USDT-P is not listed as a live perp market"
    result = rules.market(BTC, TRADING, views)
    assert (result.name, result.status) == ("market.BTC", Status.FAIL)
    assert "not listed" in result.message


def test_market_whose_minimum_exceeds_the_notional_fails() -> None:
    result = rules.market(BTC, TRADING, pair_views(min_q="0.01"))  # 0.01 BTC = 500 USD > 100
    assert result.status is Status.FAIL
    assert "minimum quantity 0.01" in result.message


def test_market_whose_max_leverage_is_below_the_range_fails_at_the_top_only() -> None:
    result = rules.market(BTC, TRADING, pair_views(max_lev="2.5"))
    assert result.status is Status.FAIL
    assert "at leverage 3" in result.message and "at leverage 2:" not in result.message


def test_market_whose_min_notional_exceeds_the_notional_fails() -> None:
    assert rules.market(BTC, TRADING, pair_views(min_notional="150")).status is Status.FAIL


# ---- collateral ----------------------------------------------------------------------------------------------


def _collateral(available: str, pairs: int = 1) -> CheckResult:
    trading = TRADING.model_copy(update={"max_concurrent_pairs": pairs})
    views = [(view(Venue.BACKPACK), view(Venue.HIBACHI))]
    return rules.collateral(Venue.HIBACHI, D(available), trading, views)


def test_collateral_needs_notional_over_max_leverage_with_the_buffer() -> None:
    # 0.002 x 50000 = 100 notional; / 3 x 1.25 = 41.67 at max leverage, / 2 x 1.25 = 62.50 at min.
    assert _collateral("30").status is Status.FAIL
    assert _collateral("50").status is Status.WARN
    result = _collateral("70")
    assert result.status is Status.PASS
    assert (result.numbers["needed_at_max_leverage"], result.numbers["needed_at_min_leverage"]) == ("41.67", "62.50")


def test_collateral_covers_every_concurrent_pair() -> None:
    assert _collateral("70", pairs=1).status is Status.PASS
    result = _collateral("70", pairs=2)
    assert (result.name, result.status) == ("collateral.hibachi", Status.FAIL)
    assert result.numbers["needed_at_max_leverage"] == "83.33"


# ---- fees ---------------------------------------------------------------------------------------------------


def test_all_taker_cost_is_the_mean_taker_rate_per_million() -> None:
    result = rules.fees({Venue.BACKPACK: (D("0.0002"), D("0.0005")), Venue.HIBACHI: (D("0.00015"), D("0.00045"))})
    assert result.status is Status.PASS
    assert result.numbers["all_taker_cost_per_1m"] == "475.00"


def test_unread_fees_warn() -> None:
    result = rules.fees({Venue.BACKPACK: "AuthError: no", Venue.HIBACHI: (D(0), D("0.0002"))})
    assert result.status is Status.WARN


# ---- what the database does not know -------------------------------------------------------------------------


def test_unknown_position_fails_under_alert_and_warns_under_close() -> None:
    held = {"BTC_USDC_PERP": D("0.5")}
    alert = rules.positions(Venue.BACKPACK, held, {}, UnknownPositions.ALERT)
    assert (alert.name, alert.status) == ("positions.backpack", Status.FAIL)
    assert alert.numbers == {"BTC_USDC_PERP_unknown": "0.5"}
    assert rules.positions(Venue.BACKPACK, held, {}, UnknownPositions.CLOSE).status is Status.WARN


def test_positions_the_pairs_hold_pass_and_a_shrunk_leg_does_not() -> None:
    expected = {"BTC/USDT-P": D("-0.002")}
    assert rules.positions(Venue.HIBACHI, expected, expected, UnknownPositions.ALERT).status is Status.PASS
    shrunk = rules.positions(Venue.HIBACHI, {"BTC/USDT-P": D("-0.001")}, expected, UnknownPositions.ALERT)
    assert shrunk.status is Status.FAIL


def test_a_difference_where_a_pair_is_mid_trade_only_warns() -> None:
    # After a crash between the fills and their record: the venue holds the leg, the ledger not yet.
    held = {"BTC_USDC_PERP": D("0.002"), "ETH_USDC_PERP": D("1")}
    mid_trade = {"BTC_USDC_PERP": D("0.002")}  # one pair mid-trade there, 0.002 per leg
    result = rules.positions(Venue.BACKPACK, held, {}, UnknownPositions.ALERT, mid_trade)
    assert result.status is Status.FAIL and result.numbers == {"ETH_USDC_PERP_unknown": "1"}
    settling = rules.positions(Venue.BACKPACK, {"BTC_USDC_PERP": D("0.002")}, {}, UnknownPositions.ALERT, mid_trade)
    assert settling.status is Status.WARN
    assert "reconciliation" in settling.message
    short = rules.positions(Venue.BACKPACK, {"BTC_USDC_PERP": D("-0.001")}, {}, UnknownPositions.ALERT, mid_trade)
    assert short.status is Status.WARN, "within the leg's planned quantity either way"


def test_a_difference_beyond_what_the_mid_trade_pair_could_hold_fails() -> None:
    # A pair of 0.002 per leg is mid-trade on BTC, but the venue holds 0.5 more than the ledger: no outcome of
    # that pair's orders explains it, so a position nobody accounts for is there.
    mid_trade = {"BTC_USDC_PERP": D("0.002")}
    held = {"BTC_USDC_PERP": D("0.502")}
    result = rules.positions(Venue.BACKPACK, held, {}, UnknownPositions.ALERT, mid_trade)
    assert result.status is Status.FAIL
    assert result.numbers == {"BTC_USDC_PERP_unknown": "0.502"}
    just_over = rules.positions(Venue.BACKPACK, {"BTC_USDC_PERP": D("0.00201")}, {}, UnknownPositions.ALERT, mid_trade)
    assert just_over.status is Status.FAIL
    # Under unknown_positions = close it still only warns (run would adopt and close it), and says so.
    closing = rules.positions(Venue.BACKPACK, held, {}, UnknownPositions.CLOSE, mid_trade)
    assert closing.status is Status.WARN and "adopt and close" in closing.message


def test_unknown_open_orders_warn() -> None:
    assert rules.orders(Venue.HIBACHI, []).status is Status.PASS
    assert rules.orders(Venue.HIBACHI, ["abc"]).status is Status.WARN


# ---- keys, maintenance, feeds, verdicts ----------------------------------------------------------------------


def test_hmac_key_type_with_an_ecdsa_key_fails() -> None:
    ecdsa = "0x" + "11" * 32
    assert rules.hibachi_key_type("hmac", ecdsa, None).status is Status.FAIL
    assert rules.hibachi_key_type("hmac", "x" * 44, None).status is Status.PASS
    assert rules.hibachi_key_type("ecdsa", None, "not hex").status is Status.FAIL
    assert rules.hibachi_key_type("ecdsa", None, ecdsa).status is Status.PASS


def test_maintenance_fails_unless_normal() -> None:
    assert rules.maintenance(Venue.HIBACHI, "NORMAL", "NORMAL").status is Status.PASS
    result = rules.maintenance(Venue.HIBACHI, "SCHEDULED_MAINTENANCE", "NORMAL", "upgrade")
    assert result.status is Status.FAIL and "upgrade" in result.message


def test_feed_without_a_quote_in_time_fails() -> None:
    assert rules.feed(Venue.BACKPACK, {"A": 0.1, "B": 0.2}).status is Status.PASS
    assert rules.feed(Venue.BACKPACK, {"A": 0.1, "B": None}).status is Status.FAIL
    assert rules.feed(Venue.BACKPACK, {"A": 6.0}, timeout_s=5).status is Status.FAIL


def test_exit_status_fails_only_on_a_failure() -> None:
    ok = CheckResult("a", Status.PASS, "")
    warn = CheckResult("b", Status.WARN, "")
    bad = CheckResult("c", Status.FAIL, "broken", {"x": "1"})
    assert exit_status([ok, warn]) == 0
    assert exit_status([ok, warn, bad]) == 1
    assert '"status": "fail"' in as_json([ok, bad])
    assert "FAIL  c  broken  [x=1]" in as_lines([ok, bad])


# ---- canary arithmetic ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backpack", "hibachi", "expected"),
    [
        ({"step": "0.00001", "min_q": "0.00001"}, {"step": "1E-10", "min_q": "1E-10", "min_notional": "1"}, "0.00003"),
        ({"step": "0.0001", "min_q": "0.0001"}, {"step": "0.00001", "min_q": "0.00001"}, "0.0001"),
        ({"step": "0.00001", "min_q": "0.00005"}, {"step": "0.00002", "min_q": "0"}, "0.00006"),
    ],
)
def test_minimum_quantity_is_the_smallest_both_accept(
    backpack: dict[str, str], hibachi: dict[str, str], expected: str
) -> None:
    views = [view(Venue.BACKPACK, **backpack), view(Venue.HIBACHI, **hibachi)]
    quantity = costs.minimum_quantity(views)
    assert quantity == D(expected)
    # ... and the planner's own sizing turns the canary's notional back into exactly that quantity.
    rules_ = [QuantityRules(v.venue.value, v.step_size, v.min_quantity, v.min_notional) for v in views]
    assert hedge_quantity(costs.planner_notional(quantity, views), D(50000), rules_) == quantity
    assert hedge_quantity(costs.planner_notional(quantity, views), D(50400), rules_) == quantity  # price moved


def test_canary_costs_against_the_all_taker_prediction() -> None:
    legs = [
        costs.LegFills(Venue.BACKPACK, Side.LONG, D(1), D(101), D(99), D("0.1"), D(100), D(100)),
        costs.LegFills(Venue.HIBACHI, Side.SHORT, D(1), D(99), D(101), D("0.09"), D(100), D(100)),
    ]
    rates = {Venue.BACKPACK: (D(0), D("0.0005")), Venue.HIBACHI: (D(0), D("0.00045"))}
    c = costs.costs(legs, D("-0.01"), D("-4.2"), rates)
    assert c.volume == D(400)
    assert c.spread == D(4)  # each leg paid 1 above / received 1 below the mid, twice
    assert c.predicted_fees == D(200) * D("0.0005") + D(200) * D("0.00045")
    assert c.fees == D("0.19")
    assert c.cost_per_1m == D("10500.00")
    assert c.predicted_cost_per_1m == D("475.00")


def test_the_database_gives_a_mid_trade_pair_its_planned_quantity_as_room_and_no_more(tmp_path: Path) -> None:
    clock = FakeClock()
    db = open_database(f"sqlite:///{tmp_path / 'perp-farmer.db'}", clock)
    try:
        plan = PairPlan(
            market="BTC",
            long=LegPlan(Venue.BACKPACK, "BTC_USDC_PERP", Side.LONG),
            short=LegPlan(Venue.HIBACHI, "BTC/USDT-P", Side.SHORT),
            leverage=D(2), notional=D(100), quantity=D("0.002"), duration_s=3600,
        )  # fmt: skip
        Writes(db, clock).insert_pair(plan)  # PLANNED: mid-trade, nothing booked yet
    finally:
        db.dispose()
    known, _ = read_database(load_settings(overrides={"data_dir": tmp_path}), {}, clock)
    assert known.settling == {Venue.BACKPACK: {"BTC_USDC_PERP": D("0.002")}, Venue.HIBACHI: {"BTC/USDT-P": D("0.002")}}
    room = known.settling[Venue.BACKPACK]
    alert = UnknownPositions.ALERT
    assert rules.positions(Venue.BACKPACK, {"BTC_USDC_PERP": D("0.002")}, {}, alert, room).status is Status.WARN
    assert rules.positions(Venue.BACKPACK, {"BTC_USDC_PERP": D("0.5")}, {}, alert, room).status is Status.FAIL
