"""Every operation of Hibachi's definition, called on the simulator as documented (and with bad parameters), each
reply validated against the documented schema and the shape of its documented example; writes are signed with
exchanges/hibachi/signing.py (HMAC and ECDSA)."""

from __future__ import annotations

import struct
import time
from decimal import Decimal
from typing import Any

import requests

from core.domain import Side
from exchanges.hibachi.signing import (
    Contract,
    EcdsaSigner,
    HmacSigner,
    cancel_all_payload,
    cancel_payload,
    order_payload,
)
from exchanges.hibachi.sim import HibachiSim
from tests.conformance.conftest import settle_funding
from tests.conformance.spec import venue

BTC, SOL = "BTC/USDT-P", "SOL/USDT-P"
UNDOCUMENTED_ALLOWED = {("DELETE", "/trade/order", 404), ("GET", "/trade/order", 404), ("POST", "/trade/order", 422)}


def test_every_operation_replies_as_documented(hb_sim: HibachiSim) -> None:
    hb = venue("hibachi")
    creds = hb_sim.paper
    session = requests.Session()
    problems: list[str] = []
    info = session.get(hb_sim.data_api_url + "/market/exchange-info", timeout=5).json()
    contracts = {
        c["symbol"]: Contract(
            c["id"],
            c["symbol"],
            c["underlyingDecimals"],
            c["settlementDecimals"],
            Decimal(c["tickSize"]),
            Decimal(c["stepSize"]),
            Decimal(c["minOrderSize"]),
            Decimal(c["minNotional"]),
            Decimal(c["initialMarginRate"]),
        )
        for c in info["futureContracts"]
    }
    nonces = iter(range(int(time.time() * 1_000_000), 2**63))

    def expect(
        status: int,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        key: str | None = creds.api_key,
    ) -> Any:
        if method == "GET" and key is not None:
            params = {"accountId": str(creds.account_id), **(params or {})}
        elif body is not None:
            body = {"accountId": creds.account_id, **body}
        headers = {"Authorization": key} if key else {}
        reply = session.request(method, hb_sim.api_url + path, params=params, json=body, headers=headers, timeout=5)
        if reply.status_code != status:
            problems.append(
                f"{method} {path} {params or body}: status {reply.status_code}, wanted {status}: {reply.text}"
            )
        if (method, path) in hb.operations():
            problems.extend(f"{method} {path} {reply.status_code}: {p}" for p in hb.check(method, path, reply))
        return reply.json() if reply.content else None

    def order(symbol: str, side: Side, quantity: str, price: str | None, signer: Any = None, **extra: Any) -> dict:
        nonce = next(nonces)
        fee = Decimal("0.00045")
        payload = order_payload(
            nonce, contracts[symbol], Decimal(quantity), side, Decimal(price) if price else None, fee
        )
        body = {
            "symbol": symbol,
            "nonce": nonce,
            "side": "BID" if side is Side.LONG else "ASK",
            "orderType": "LIMIT" if price else "MARKET",
            "quantity": quantity,
            "maxFeesPercent": str(fee),
            "signature": (signer or HmacSigner(creds.hmac_secret)).sign(payload),
            **extra,
        }
        if price:
            body["price"] = price
        return body

    hmac_sign = HmacSigner(creds.hmac_secret).sign
    # Trading first, so that every history has rows.
    expect(200, "POST", "/trade/account/leverage", body={"symbol": BTC, "initialMarginRate": "0.2"})
    expect(200, "POST", "/trade/order", body=order(BTC, Side.LONG, "0.001", None, clientId="c-1"))
    expect(200, "POST", "/trade/order", body=order(BTC, Side.SHORT, "0.0005", None, EcdsaSigner(creds.private_key)))
    resting = expect(200, "POST", "/trade/order", body=order(SOL, Side.LONG, "1", "1", clientId="c-2"))
    settle_funding(hb_sim)

    # Public reads.
    for path in ("/market/exchange-info", "/market/inventory", "/exchange/utc-timestamp"):
        expect(200, "GET", path, key=None)
    for path in (
        "/market/data/prices",
        "/market/data/stats",
        "/market/data/trades",
        "/market/data/klines",
        "/market/data/open-interest",
        "/market/data/orderbook",
        "/market/data/funding-rates",
    ):
        expect(200, "GET", path, {"symbol": BTC}, key=None)
        expect(400, "GET", path, {"symbol": "DOGE/USDT-P"}, key=None)
    expect(200, "GET", "/market/data/orderbook", {"symbol": BTC, "depth": "3", "granularity": "1"}, key=None)
    expect(400, "GET", "/market/data/orderbook", {"symbol": BTC, "granularity": "0.5"}, key=None)
    expect(400, "GET", "/market/data/orderbook", {"symbol": BTC, "depth": "101"}, key=None)
    expect(200, "GET", "/market/data/klines", {"symbol": BTC, "interval": "1h"}, key=None)
    expect(400, "GET", "/market/data/klines", {"symbol": BTC, "interval": "2h"}, key=None)
    expect(400, "GET", "/market/data/funding-rates", {"symbol": BTC, "limit": "0"}, key=None)
    unknown = session.get(hb_sim.api_url + "/trade/nothing", timeout=5)
    assert unknown.status_code == 404 and not hb.error_body_problems(unknown)
    assert hb_sim.contract_json(hb_sim.contracts[BTC])["status"] == "LIVE"
    assert set(info["feeConfig"]) >= {
        "depositFees",
        "instantWithdrawDstPublicKey",
        "instantWithdrawalFees",
        "tradeMakerFeeRate",
        "tradeTakerFeeRate",
        "transferFeeRate",
        "withdrawalFees",
    }

    # Account reads.
    for path in (
        "/capital/balance",
        "/capital/history",
        "/trade/account/info",
        "/trade/account/trades",
        "/trade/account/settlements_history",
        "/trade/orders",
        "/trade/orders/history",
    ):
        expect(200, "GET", path)
    expect(401, "GET", "/capital/balance", key="not-the-key")
    expect(400, "GET", "/trade/account/trades", {"limit": "1000"})
    expect(200, "GET", "/trade/orders/history", {"status": "filled", "side": "buy"})
    expect(400, "GET", "/trade/orders/history", {"status": "done"})
    expect(200, "GET", "/capital/deposit-info", {"publicKey": creds.public_key.hex()})
    expect(400, "GET", "/capital/deposit-info")
    expect(200, "GET", "/trade/order", {"orderId": resting["orderId"]})
    expect(404, "GET", "/trade/order", {"clientId": "nope"})
    expect(400, "GET", "/trade/order", {})

    # Writes.
    bad_price = order(SOL, Side.LONG, "1", "1.0005")
    expect(400, "POST", "/trade/order", body=bad_price)
    expect(400, "POST", "/trade/order", body={**order(SOL, Side.LONG, "1", "1"), "signature": "00" * 32})
    expect(422, "POST", "/trade/order", body={"symbol": SOL})
    modify_nonce = next(nonces)
    fee = Decimal("0.00045")
    modify = {
        "orderId": resting["orderId"],
        "nonce": modify_nonce,
        "symbol": SOL,
        "updatedQuantity": "2",
        "updatedPrice": "1.5",
        "maxFeesPercent": str(fee),
        "signature": hmac_sign(order_payload(modify_nonce, contracts[SOL], Decimal(2), Side.LONG, Decimal("1.5"), fee)),
    }
    expect(200, "PUT", "/trade/order", body=modify)
    expect(400, "PUT", "/trade/order", body={**modify, "nonce": next(nonces)})  # signed for another nonce
    batch = {
        "orders": [
            {"action": "place", **order(SOL, Side.LONG, "1", "1", clientId="c-3")},
            {
                "action": "cancel",
                "orderId": resting["orderId"],
                "signature": hmac_sign(cancel_payload(int(resting["orderId"]))),
            },
            {"action": "launch"},
        ]
    }
    results = expect(200, "POST", "/trade/orders", body=batch)["orders"]
    assert "orderId" in results[0] and "nonce" in results[1] and results[2]["status"] == "failed"
    expect(400, "POST", "/trade/orders", body={"orders": []})
    placed = results[0]["orderId"]
    expect(200, "DELETE", "/trade/order", body={"orderId": placed, "signature": hmac_sign(cancel_payload(int(placed)))})
    expect(404, "DELETE", "/trade/order", body={"orderId": placed, "signature": hmac_sign(cancel_payload(int(placed)))})
    all_nonce = next(nonces)
    expect(
        200, "DELETE", "/trade/orders", body={"nonce": all_nonce, "signature": hmac_sign(cancel_all_payload(all_nonce))}
    )
    expect(400, "DELETE", "/trade/orders", body={"nonce": next(nonces), "signature": "00" * 32})

    # Capital movements: a withdrawal and a transfer to a second account, both plain balance moves.
    other = hb_sim.add_account("other", Decimal(0))
    address = "11" * 20
    withdraw = {
        "coin": "USDT",
        "withdrawAddress": address,
        "network": "arbitrum",
        "quantity": "2",
        "maxFees": "0.1",
        "signature": hmac_sign(struct.pack(">IQQ", 1, 2_000_000, 100_000) + bytes.fromhex(address)),
    }
    expect(200, "POST", "/capital/withdraw", body=withdraw)
    expect(400, "POST", "/capital/withdraw", body={**withdraw, "quantity": "3"})
    t_nonce = next(nonces)
    dst = other.public_key[1:]
    transfer = {
        "coin": "USDT",
        "fees": "0",
        "nonce": t_nonce,
        "quantity": "5",
        "dstPublicKey": dst.hex(),
        "signature": hmac_sign(struct.pack(">QIQ", t_nonce, 1, 5_000_000) + dst + struct.pack(">Q", 0)),
    }
    expect(200, "POST", "/capital/transfer", body=transfer)
    assert hb_sim.account(other.account_id).collateral == Decimal(5)
    history = expect(200, "GET", "/capital/history")["transactions"]
    assert [t["transactionType"] for t in history] == ["transfer-out", "withdrawal"]

    assert not problems, "\n".join(problems)
    served = set(hb_sim.http_routes)
    assert served == hb.operations(), served ^ hb.operations()
    assert hb.checked == served, served - hb.checked
    assert hb.undocumented <= UNDOCUMENTED_ALLOWED, hb.undocumented - UNDOCUMENTED_ALLOWED
