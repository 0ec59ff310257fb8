"""ccxt's `hibachi` class, unmodified, against the Hibachi simulator, once per key type (an ECDSA private key,
and the 44-character HMAC secret that ccxt tells apart by its length): configuration only (keys, account id
and the `urls['api']` host map). ccxt has no setLeverage for Hibachi; its implicit API method reaches
`POST /trade/account/leverage` (body per spec hibachi.md §3). ccxt parses numbers to float: quantities are
compared as Decimal through `str()` and against the raw strings the venue sent (`info`)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from exchanges.hibachi.sim import HibachiSim
from tests.independent.sdk import require

ccxt = require("ccxt")

BTC = "BTC/USDT:USDT"


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


@pytest.fixture(params=["private_key", "hmac_secret"])
def client(request: pytest.FixtureRequest, hibachi_sim: HibachiSim) -> Any:
    paper = hibachi_sim.paper
    secret = paper.private_key if request.param == "private_key" else paper.hmac_secret
    exchange = ccxt.hibachi({"apiKey": paper.api_key, "accountId": str(paper.account_id), "privateKey": secret})
    exchange.urls["api"] = {"public": hibachi_sim.data_api_url, "private": hibachi_sim.api_url}
    exchange.load_markets()
    return exchange


def test_lists_the_perp_contracts_with_their_ids(client: Any, hibachi_sim: HibachiSim) -> None:
    assert {m["id"] for m in client.markets.values()} == set(hibachi_sim.contracts)
    btc = client.market(BTC)
    contract = hibachi_sim.contracts["BTC/USDT-P"]
    assert (btc["id"], btc["settle"], btc["swap"], int(btc["numericId"])) == ("BTC/USDT-P", "USDT", True, contract.id)
    # Only the amount precision: ccxt derives the price precision from orderbookGranularities (spec §7.12).
    assert dec(btc["precision"]["amount"]) == contract.market.step_size


def test_reads_the_ticker_at_the_venue_price(client: Any, hibachi_sim: HibachiSim) -> None:
    ticker = client.fetch_ticker(BTC)
    bids, asks = hibachi_sim.engine.book("BTC/USDT-P")
    assert (dec(ticker["bid"]), dec(ticker["ask"])) == (bids[0][0], asks[0][0])
    assert Decimal(ticker["info"]["prices"]["markPrice"]) == hibachi_sim.engine.mark("BTC/USDT-P")


def test_reads_the_balance(client: Any) -> None:
    balance = client.fetch_balance()
    assert dec(balance["USDT"]["total"]) == dec(balance["USDT"]["free"]) == Decimal(10000)
    assert Decimal(balance["info"]["balance"]) == Decimal(10000)


def test_sets_leverage_per_contract(client: Any, hibachi_sim: HibachiSim) -> None:
    reply = client.privatePostTradeAccountLeverage(
        {"accountId": int(client.accountId), "symbol": "BTC/USDT-P", "initialMarginRate": "0.2"}
    )
    assert reply == {"status": "success"}
    assert hibachi_sim.paper.account.market_imr["BTC/USDT-P"] == Decimal("0.2")
    leverages = client.fetch_balance()["info"]["leverages"]
    rates = {x["symbol"]: Decimal(x["initialMarginRate"]) for x in leverages}
    assert rates["BTC/USDT-P"] == Decimal("0.2")


def test_market_order_fills_into_a_position_and_the_trade_history(client: Any, hibachi_sim: HibachiSim) -> None:
    assert client.fetch_positions() == []
    placed = client.create_order(BTC, "market", "buy", 0.01)
    # Hibachi answers a placement with the order id only; ccxt reports that as "pending" and the lookup tells.
    order = client.fetch_order(placed["id"], BTC)
    assert (order["status"], dec(order["amount"]), dec(order["filled"]), order["side"]) == (
        "closed", Decimal("0.01"), Decimal("0.01"), "buy")  # fmt: skip

    [position] = client.fetch_positions()
    assert (position["symbol"], position["side"], dec(position["contracts"])) == (BTC, "long", Decimal("0.01"))

    [trade] = client.fetch_my_trades(BTC)
    [fill] = hibachi_sim.paper.account.fills
    assert trade["order"] == placed["id"]
    assert Decimal(trade["info"]["quantity"]) == dec(trade["amount"]) == fill.quantity == Decimal("0.01")
    assert Decimal(trade["info"]["price"]) == fill.price
    assert Decimal(trade["info"]["fee"]) == fill.fee


def test_limit_order_rests_is_looked_up_and_cancelled(client: Any) -> None:
    placed = client.create_order(BTC, "limit", "buy", 0.02, 50000)
    [resting] = client.fetch_open_orders(BTC)
    assert (resting["id"], dec(resting["price"]), dec(resting["remaining"])) == (
        placed["id"], Decimal(50000), Decimal("0.02"))  # fmt: skip
    assert client.fetch_order(placed["id"], BTC)["status"] == "open"

    assert client.cancel_order(placed["id"], BTC)["status"] == "canceled"
    assert client.fetch_open_orders(BTC) == []
    assert client.fetch_order(placed["id"], BTC)["status"] == "canceled"
    assert [o["id"] for o in client.fetch_canceled_orders(BTC)] == [placed["id"]]


def test_funding_settlement_appears_in_the_settlement_history(client: Any, hibachi_sim: HibachiSim) -> None:
    # ccxt's fetchFundingHistory is NotSupported for Hibachi; its fetchMySettlementHistory reads the spec's
    # funding-event history (/trade/account/settlements_history). It is called without a symbol: given one,
    # ccxt sends the contract id through safe_number as "2.0", which is no integer id (a ccxt bug; the
    # simulator rightly rejects it with errorCode 4), so the symbol is filtered here instead.
    client.create_order(BTC, "market", "buy", 0.01)
    assert client.fetch_my_settlement_history() == []
    hibachi_sim.engine.schedule_funding("BTC/USDT-P", int(time.time()))  # due now: the next request settles it

    [settlement] = [s for s in client.fetch_my_settlement_history() if s["symbol"] == BTC]
    [settled] = hibachi_sim.paper.account.funding
    assert Decimal(settlement["info"]["settledAmount"]) == settled.amount < 0  # a long pays a positive rate
    assert Decimal(settlement["info"]["quantity"]) == Decimal("0.01")
    [rate] = client.fetch_funding_rate_history(BTC)
    assert dec(rate["fundingRate"]) == settled.rate
