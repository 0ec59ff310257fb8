"""backpack-exchange-sdk, unmodified, against the Backpack simulator: configuration only (keys and
`base_url`). The SDK returns the venue's JSON as parsed, so quantities are compared as Decimal from the strings."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from exchanges.backpack.sim import BackpackSim
from tests.independent.sdk import require

authenticated = require("backpack_exchange_sdk.authenticated")
public = require("backpack_exchange_sdk.public")

BTC = "BTC_USDC_PERP"


@pytest.fixture
def pub(backpack_sim: BackpackSim) -> Any:
    return public.PublicClient(base_url=backpack_sim.rest_url + "/")


@pytest.fixture
def auth(backpack_sim: BackpackSim) -> Any:
    return authenticated.AuthenticationClient(backpack_sim.api_key, backpack_sim.api_secret,
                                              base_url=backpack_sim.rest_url + "/")  # fmt: skip


def test_lists_markets_and_reads_tickers(pub: Any, backpack_sim: BackpackSim) -> None:
    markets = pub.get_markets()
    assert {m["symbol"] for m in markets if m["marketType"] == "PERP"} == set(backpack_sim.engine.markets)
    assert pub.get_market(BTC)["filters"]["quantity"]["stepSize"] == "0.00001"  # GET /api/v1/market?symbol=
    ticker = pub.get_ticker(BTC)
    assert (ticker["symbol"], Decimal(ticker["lastPrice"])) == (BTC, backpack_sim.engine.mark(BTC))
    assert {t["symbol"] for t in pub.get_tickers()} == set(backpack_sim.engine.markets)


def test_reads_balances_collateral_and_sets_leverage(auth: Any, backpack_sim: BackpackSim) -> None:
    assert Decimal(auth.get_balances()["USDC"]["available"]) == Decimal(10000)
    assert Decimal(auth.get_collateral()["netEquity"]) == Decimal(10000)
    auth.update_account(leverageLimit="3")
    assert backpack_sim.account().leverage_limit == Decimal(3)
    assert auth.get_account()["leverageLimit"] == "3"


def test_orders_positions_fills_and_funding(auth: Any, backpack_sim: BackpackSim) -> None:
    assert auth.get_open_positions() == []
    market = auth.execute_order("Market", "Bid", BTC, quantity="0.01")
    assert (market["status"], Decimal(market["executedQuantity"])) == ("Filled", Decimal("0.01"))
    [position] = auth.get_open_positions()
    assert (position["symbol"], Decimal(position["netQuantity"])) == (BTC, Decimal("0.01"))

    limit = auth.execute_order("Limit", "Bid", BTC, price="50000", quantity="0.02", timeInForce="GTC")
    assert auth.get_users_open_orders(BTC, orderId=limit["id"])["status"] == "New"
    assert [o["id"] for o in auth.get_open_orders(symbol=BTC)] == [limit["id"]]
    assert auth.cancel_open_order(BTC, orderId=limit["id"])["status"] == "Cancelled"
    assert auth.get_open_orders(symbol=BTC) == []
    history = {o["id"]: o["status"] for o in auth.get_order_history(symbol=BTC)}
    assert history == {market["id"]: "Filled", limit["id"]: "Cancelled"}

    [fill] = auth.get_fill_history(symbol=BTC)
    [ours] = backpack_sim.account().fills
    assert fill["orderId"] == market["id"]
    assert (Decimal(fill["quantity"]), Decimal(fill["price"])) == (ours.quantity, ours.price)

    backpack_sim.engine.schedule_funding(BTC, int(time.time()))  # due now: the next request settles it
    [payment] = auth.get_funding_payments(symbol=BTC)
    [settled] = backpack_sim.account().funding
    assert (payment["symbol"], Decimal(payment["quantity"])) == (BTC, settled.amount)
    assert Decimal(payment["fundingRate"]) == settled.rate
