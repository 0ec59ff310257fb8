"""Every frame the Hibachi simulator's websockets send, validated against JSON Schemas written from the spec's
field lists (tests/data/hibachi-ws-schemas.json; the AsyncAPI document publishes no payload schemas)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from core.domain import Side
from exchanges.base import OrderType
from exchanges.hibachi.signing import HmacSigner, cancel_all_payload
from exchanges.hibachi.sim import HibachiSim
from tests.venues.hibachi_ws_kit import Nonces, Socket, cancel_signature, order_params

SCHEMAS = json.loads((Path(__file__).parents[1] / "data" / "hibachi-ws-schemas.json").read_text())
BTC, SOL = "BTC/USDT-P", "SOL/USDT-P"
REPLY_KIND = {
    "stream.start": "reply.stream.start", "stream.ping": "reply.empty", "stream.stop": "reply.empty",
    "order.place": "reply.order.place", "order.modify": "reply.empty", "order.cancel": "reply.empty",
    "order.status": "reply.order.status", "orders.status": "reply.orders.status",
    "orders.cancel": "reply.orders.cancel", "orders.batch": "reply.orders.batch",
    "orders.enableCancelOnDisconnect": "reply.empty",
}  # fmt: skip


def validator(kind: str) -> Draft202012Validator:
    """A validator for one frame kind of the schema file."""
    return Draft202012Validator({"$defs": SCHEMAS["$defs"], "kinds": SCHEMAS["kinds"], "$ref": f"#/kinds/{kind}"})


def kind_of(frame: dict[str, Any], replies: dict[Any, str]) -> str:
    """Which schema a received frame must satisfy."""
    if "error" in frame:
        return "error"
    if frame.get("method") == "list_subscription":
        return "market.list_subscription"
    if "accountId" in frame and "topic" in frame:
        return "event.order" if frame["topic"].startswith("ORDER_") else f"event.{frame['topic']}"
    if "topic" in frame:
        return f"market.{frame['topic']}"
    return replies[frame["id"]]


class Recorder:
    """Sends requests on sockets and remembers which reply kind each request id expects."""

    def __init__(self) -> None:
        self.sockets: list[tuple[Socket, dict[Any, str]]] = []

    def socket(self, url: str, api_key: str | None = None) -> tuple[Socket, dict[Any, str]]:
        sock, replies = Socket(url, api_key), {}
        self.sockets.append((sock, replies))
        return sock, replies

    def call(self, sock: Socket, replies: dict[Any, str], method: str, params: dict[str, Any],
             signature: str | None = None) -> dict[str, Any]:  # fmt: skip
        replies[len(replies) + 1] = REPLY_KIND[method]
        return sock.request(method, params, signature)


@pytest.fixture
def sim() -> Iterator[HibachiSim]:
    s = HibachiSim(seed=11, collateral=D(1_000_000), publish_interval_s=0.02).start()
    yield s
    s.stop()


def test_the_schemas_are_valid_and_can_fail() -> None:
    Draft202012Validator.check_schema(SCHEMAS)
    good = {"symbol": BTC, "topic": "mark_price", "data": {"markPrice": "65000.5"}}
    assert not list(validator("market.mark_price").iter_errors(good))
    assert list(validator("market.mark_price").iter_errors({**good, "data": {"markPrice": 65000.5}}))


def test_every_frame_matches_its_schema(sim: HibachiSim) -> None:
    rec, creds, nonce = Recorder(), sim.paper, Nonces(sim)
    market, _ = rec.socket(sim.ws_market_url)
    topics = ["mark_price", "spot_price", "ask_bid_price", "funding_rate_estimation", "trades", "klines"]
    subs = [{"symbol": SOL, "topic": t} for t in topics] + [{"symbol": SOL, "topic": "orderbook", "depth": 3,
                                                              "granularity": "0.01"}]  # fmt: skip
    market.send({"method": "subscribe", "parameters": {"subscriptions": subs}})
    market.send({"method": "list_subscription", "id": 1})
    market.send({"method": "subscribe", "parameters": {"subscriptions": [{"symbol": SOL, "topic": "orderbook",
                                                                          "granularity": 0.01}]}})  # fmt: skip

    account, acc_replies = rec.socket(sim.ws_account_url(), creds.api_key)
    started = rec.call(account, acc_replies, "stream.start", {"accountId": creds.account_id})
    key = started["result"]["listenKey"]
    trade, replies = rec.socket(sim.ws_trade_url(), creds.api_key)
    rec.call(trade, replies, "orders.enableCancelOnDisconnect", {"nonce": nonce()})
    rec.call(trade, replies, "order.place", *order_params(sim, creds, nonce(), SOL, Side.LONG, "600", clientId="a1"))
    low = str((sim.engine.mark(SOL) / 2).quantize(D("0.001")))
    resting = rec.call(trade, replies, "order.place", *order_params(sim, creds, nonce(), SOL, Side.LONG, "1", low))
    order_id = resting["result"]["orderId"]
    rec.call(trade, replies, "order.status", {"accountId": creds.account_id, "orderId": order_id})
    rec.call(trade, replies, "orders.status", {"accountId": creds.account_id})
    rec.call(trade, replies, "order.cancel", {"accountId": creds.account_id, "orderId": order_id},
             cancel_signature(creds, order_id))  # fmt: skip
    # Cancelling it again is refused: an error frame.
    rec.call(trade, replies, "order.cancel", {"accountId": creds.account_id, "orderId": order_id},
             cancel_signature(creds, order_id))  # fmt: skip
    batch_params, batch_signature = order_params(sim, creds, nonce(), SOL, Side.LONG, "1", low)
    batch_item = {k: v for k, v in batch_params.items() if k != "accountId"} | {
        "action": "place",
        "signature": batch_signature,
    }
    rec.call(trade, replies, "orders.batch", {"accountId": creds.account_id, "orders": [batch_item]})
    all_nonce = nonce()
    rec.call(trade, replies, "orders.cancel", {"accountId": creds.account_id, "nonce": all_nonce},
             HmacSigner(creds.hmac_secret).sign(cancel_all_payload(all_nonce)))  # fmt: skip
    rec.call(trade, replies, "order.place", order_params(sim, creds, nonce(), SOL, Side.LONG, "1")[0], "00" * 32)
    sim.engine.place(sim.account(), symbol=SOL, side=Side.SHORT, order_type=OrderType.MARKET, quantity=D(600))
    rec.call(account, acc_replies, "stream.ping", {"accountId": creds.account_id, "listenKey": key})
    rec.call(account, acc_replies, "stream.ping", {"accountId": creds.account_id, "listenKey": "nope"})
    rec.call(account, acc_replies, "stream.ping", {"accountId": creds.account_id, "listenKey": key})
    rec.call(account, acc_replies, "stream.stop", {"accountId": creds.account_id, "listenKey": key})

    sim.prices.jump("SOL", D(1))
    kinds_wanted = {f"market.{t}" for t in [*topics, "orderbook"]} | {"market.list_subscription", "error"}
    seen_market: set[str] = set()
    while not kinds_wanted <= seen_market:
        seen_market.add(kind_of(market.recv(), {}))
    rejected = Socket(sim.ws_account_url(), "wrong-key")
    refusal = rejected.recv()
    problems: list[str] = []
    counts: Counter[str] = Counter()
    frames = [(f, r) for sock, r in rec.sockets for f in sock.frames] + [(refusal, {})]
    for frame, frame_replies in frames:
        kind = kind_of(frame, frame_replies)
        counts[kind] += 1
        problems += [f"{kind}: {e.message} in {json.dumps(frame)[:200]}" for e in validator(kind).iter_errors(frame)]
    assert problems == []
    assert set(counts) == set(SCHEMAS["kinds"])  # every kind was exercised
    assert counts["event.trade_update"] == 4 and counts["error"] >= 4
    for sock, _ in rec.sockets:
        sock.close()
    rejected.close()
