"""The simulators as a separate process (`python -m exchanges.<venue>.sim --port 0`), configured for ccxt from
nothing but the JSON line they print: markets listed and an order placed and looked up, per venue."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.independent.sdk import require

ccxt = require("ccxt")


@pytest.fixture
def standalone(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Start the venue's simulator process; yield the endpoints it printed; end it."""
    proc = subprocess.Popen([sys.executable, "-m", f"exchanges.{request.param}.sim", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=60), "the simulator printed nothing within 60 s"
        yield json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("standalone", ["backpack"], indirect=True)
def test_backpack_process_serves_ccxt(standalone: dict[str, Any]) -> None:
    assert standalone["rest"].startswith("http://127.0.0.1:")
    client = ccxt.backpack({"apiKey": standalone["api_key"], "secret": standalone["api_secret"]})
    client.urls["api"] = {"public": standalone["rest"], "private": standalone["rest"]}
    assert {m["id"] for m in client.load_markets().values()} >= {"BTC_USDC_PERP", "ETH_USDC_PERP"}
    order = client.create_order("ETH/USDC:USDC", "market", "sell", 0.5)
    looked_up = client.fetch_order(order["id"], "ETH/USDC:USDC")
    assert (looked_up["status"], Decimal(looked_up["info"]["executedQuantity"])) == ("closed", Decimal("0.5"))


@pytest.mark.parametrize("standalone", ["hibachi"], indirect=True)
def test_hibachi_process_serves_ccxt(standalone: dict[str, Any]) -> None:
    assert standalone["api"].startswith("http://127.0.0.1:")
    client = ccxt.hibachi({"apiKey": standalone["api_key"], "accountId": str(standalone["account_id"]),
                           "privateKey": standalone["private_key"]})  # fmt: skip
    client.urls["api"] = {"public": standalone["data_api"], "private": standalone["api"]}
    assert {m["id"] for m in client.load_markets().values()} >= {"BTC/USDT-P", "ETH/USDT-P"}
    placed = client.create_order("ETH/USDT:USDT", "market", "sell", 0.5)
    looked_up = client.fetch_order(placed["id"], "ETH/USDT:USDT")
    assert (looked_up["status"], Decimal(looked_up["info"]["totalQuantity"])) == ("closed", Decimal("0.5"))
    [position] = client.fetch_positions()
    assert (position["side"], Decimal(position["info"]["quantity"])) == ("short", Decimal("0.5"))
