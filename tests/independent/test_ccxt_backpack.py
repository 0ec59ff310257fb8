"""ccxt's `backpack` class, unmodified, against the Backpack simulator: configuration only (keys and the
`urls['api']` host map). ccxt has no setLeverage or collateral call for Backpack (spec backpack.md §8); its
implicit API methods, generated from its own endpoint table, reach `PATCH /api/v1/account` and
`GET /api/v1/capital/collateral` instead. ccxt parses numbers to float: quantities are compared as Decimal
through `str()` and against the raw strings the venue sent (`info`)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from exchanges.backpack.sim import BackpackSim
from tests.independent.sdk import require

ccxt = require("ccxt")

BTC = "BTC/USDC:USDC"


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


@pytest.fixture
def client(backpack_sim: BackpackSim) -> Any:
    exchange = ccxt.backpack({"apiKey": backpack_sim.api_key, "secret": backpack_sim.api_secret})
    exchange.urls["api"] = {"public": backpack_sim.rest_url, "private": backpack_sim.rest_url}
    exchange.load_markets()
    return exchange


def test_lists_the_perp_markets_with_their_filters(client: Any, backpack_sim: BackpackSim) -> None:
    perps = {m["id"]: m for m in client.markets.values() if m["swap"]}
    assert set(perps) == set(backpack_sim.engine.markets)
    btc = client.market(BTC)
    assert (btc["id"], btc["settle"], btc["linear"]) == ("BTC_USDC_PERP", "USDC", True)
    market = backpack_sim.engine.markets["BTC_USDC_PERP"]
    assert dec(btc["precision"]["price"]) == market.tick_size
    assert dec(btc["precision"]["amount"]) == market.step_size


def test_reads_tickers_at_the_venue_price(client: Any, backpack_sim: BackpackSim) -> None:
    ticker = client.fetch_ticker(BTC)
    assert ticker["symbol"] == BTC
    assert dec(ticker["last"]) == Decimal(ticker["info"]["lastPrice"]) == backpack_sim.engine.mark("BTC_USDC_PERP")
    tickers = client.fetch_tickers()
    assert {t["info"]["symbol"] for t in tickers.values()} == set(backpack_sim.engine.markets)


def test_reads_balances_and_collateral(client: Any) -> None:
    balance = client.fetch_balance()
    assert dec(balance["USDC"]["total"]) == Decimal(10000)
    assert dec(balance["USDC"]["used"]) == 0
    collateral = client.privateGetApiV1CapitalCollateral()
    assert Decimal(collateral["netEquity"]) == Decimal(10000)
    assert [c["symbol"] for c in collateral["collateral"]] == ["USDC"]


def test_sets_leverage_through_the_account_update(client: Any, backpack_sim: BackpackSim) -> None:
    client.privatePatchApiV1Account({"leverageLimit": "5"})
    assert backpack_sim.account().leverage_limit == Decimal(5)
    assert client.privateGetApiV1Account()["leverageLimit"] == "5"


def test_market_order_fills_into_a_position_and_the_fill_history(client: Any, backpack_sim: BackpackSim) -> None:
    assert client.fetch_positions() == []
    order = client.create_order(BTC, "market", "buy", 0.01)
    assert (order["status"], dec(order["filled"]), order["side"]) == ("closed", Decimal("0.01"), "buy")

    looked_up = client.fetch_order(order["id"], BTC)
    assert (looked_up["status"], dec(looked_up["amount"]), dec(looked_up["filled"])) == (
        "closed", Decimal("0.01"), Decimal("0.01"))  # fmt: skip

    [position] = client.fetch_positions()
    assert (position["symbol"], position["side"], dec(position["contracts"])) == (BTC, "long", Decimal("0.01"))
    assert dec(position["entryPrice"]) == dec(order["average"])

    [trade] = client.fetch_my_trades(BTC)
    [fill] = backpack_sim.account().fills
    assert trade["order"] == order["id"]
    assert Decimal(trade["info"]["quantity"]) == dec(trade["amount"]) == fill.quantity == Decimal("0.01")
    assert Decimal(trade["info"]["price"]) == fill.price
    assert dec(trade["fee"]["cost"]) == fill.fee and trade["fee"]["currency"] == "USDC"


def test_limit_order_rests_is_looked_up_and_cancelled(client: Any) -> None:
    order = client.create_order(BTC, "limit", "buy", 0.02, 50000)
    assert (order["status"], dec(order["price"]), dec(order["remaining"])) == ("open", Decimal(50000), Decimal("0.02"))
    assert [o["id"] for o in client.fetch_open_orders(BTC)] == [order["id"]]
    assert client.fetch_order(order["id"], BTC)["status"] == "open"

    cancelled = client.cancel_order(order["id"], BTC)
    assert (cancelled["id"], cancelled["status"]) == (order["id"], "canceled")
    assert client.fetch_open_orders(BTC) == []
    assert client.fetch_order(order["id"], BTC)["status"] == "canceled"
    history = {o["id"]: o for o in client.fetch_orders(BTC)}
    assert history[order["id"]]["status"] == "canceled"
    assert dec(history[order["id"]]["filled"]) == 0


def test_funding_payment_appears_in_the_funding_history(client: Any, backpack_sim: BackpackSim) -> None:
    client.create_order(BTC, "market", "buy", 0.01)
    assert client.fetch_funding_history(BTC) == []
    backpack_sim.engine.schedule_funding("BTC_USDC_PERP", int(time.time()))  # due now: the next request settles it

    [payment] = client.fetch_funding_history(BTC)
    [settled] = backpack_sim.account().funding
    assert payment["symbol"] == BTC
    assert Decimal(payment["info"]["quantity"]) == settled.amount < 0  # a long pays a positive rate
    assert dec(payment["rate"]) == settled.rate
    [rate] = client.fetch_funding_rate_history(BTC)
    assert dec(rate["fundingRate"]) == settled.rate
