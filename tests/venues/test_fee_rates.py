"""Each client reads its account's fee rates from the venue, and the simulators serve the rates they charge."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from exchanges.backpack import parse as bp_parse
from exchanges.backpack.account_events import parse_order_update
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.base import FeeRates
from exchanges.errors import MalformedResponse
from exchanges.hibachi import parse as hb_parse
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.sim import HibachiSim


def test_backpack_rates_are_the_simulators_own_in_fractions(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    assert bp.fee_rates() == FeeRates(maker=D("0.0002"), taker=D("0.0005"))
    bp_sim.engine.maker_fee, bp_sim.engine.taker_fee = D("-0.0001"), D("0.0004")  # a rebating maker tier
    assert bp.fee_rates() == FeeRates(maker=D("-0.0001"), taker=D("0.0004"))


def test_hibachi_rates_are_the_accounts_own(hb: HibachiClient, hb_sim: HibachiSim) -> None:
    assert hb.fee_rates() == FeeRates(maker=D("0.00015"), taker=D("0.00045"))
    hb_sim.engine.maker_fee, hb_sim.engine.taker_fee = D("0.0001"), D("0.0003")  # differs from feeConfig
    assert hb.fee_rates() == FeeRates(maker=D("0.0001"), taker=D("0.0003"))


def test_backpack_bps_become_fractions_and_a_missing_rate_is_malformed() -> None:
    rates = bp_parse.parse_fee_rates({"futuresMakerFee": "-1", "futuresTakerFee": "4.5"})
    assert rates == FeeRates(maker=D("-0.0001"), taker=D("0.00045"))
    with pytest.raises(MalformedResponse):
        bp_parse.parse_fee_rates({"futuresMakerFee": "2"})


def test_hibachi_null_account_rates_fall_back_to_fee_config_one_by_one() -> None:
    info = hb_parse.ExchangeInfo("NORMAL", {}, maker_fee=D("0.00015"), taker_fee=D("0.00045"))
    both_null = {"tradeMakerFeeRate": None, "tradeTakerFeeRate": None}
    assert hb_parse.parse_fee_rates(both_null, info) == FeeRates(D("0.00015"), D("0.00045"))
    own_maker = {"tradeMakerFeeRate": "0.00010000", "tradeTakerFeeRate": None}
    assert hb_parse.parse_fee_rates(own_maker, info) == FeeRates(D("0.0001"), D("0.00045"))
    assert hb_parse.parse_fee_rates({}, info) == FeeRates(D("0.00015"), D("0.00045"))


def test_fee_rates_pick_the_rate_by_maker_flag() -> None:
    rates = FeeRates(maker=D("-0.0001"), taker=D("0.0005"))
    assert (rates.rate(True), rates.rate(False), rates.rate(None)) == (D("-0.0001"), D("0.0005"), D("0.0005"))


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), (None, None), ("false", False), ("TRUE", True)]
)
def test_maker_flags_read_booleans_and_their_text(value: object, expected: bool | None) -> None:
    assert bp_parse.maker_flag(value, "isMaker") is expected
    assert hb_parse.taker_flag(value) is expected


@pytest.mark.parametrize("value", ["yes", 1, 0, "1"])
def test_other_maker_flags_are_malformed(value: object) -> None:
    with pytest.raises(MalformedResponse):
        bp_parse.maker_flag(value, "isMaker")
    with pytest.raises(MalformedResponse):
        hb_parse.taker_flag(value)


def test_the_account_streams_read_maker_flags_as_the_rest_replies_do() -> None:
    # The stream parsers took bool(flag): the text "false" would have booked a taker fill as a maker one.
    event = {
        "e": "orderFill", "E": 1796169393466105, "s": "BTC_USDC_PERP", "i": "5", "c": 8, "S": "Bid", "o": "MARKET",
        "f": "GTC", "q": "0.01", "X": "Filled", "z": "0.01", "Z": "649.848", "l": "0.01", "L": "64984.8", "t": 2,
        "m": "false", "n": "0.32", "N": "USDC", "T": 1796169393466080,
    }  # fmt: skip
    (fill,) = parse_order_update(event).fills
    assert fill.is_maker is False
    with pytest.raises(MalformedResponse):
        parse_order_update({**event, "m": "sometimes"})
