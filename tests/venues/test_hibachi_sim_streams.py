"""The Hibachi simulator's account, trade and market websockets (spec §5): auth, snapshot, listenKey expiry,
fill pushes from real order processing (sent before the reply), the trade socket, cancel-on-disconnect,
list_subscription and the account-stream fault knobs."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest
import requests
from websockets.exceptions import ConnectionClosed

from core.clock import FakeClock
from core.domain import Side
from exchanges.base import OrderType
from exchanges.hibachi.sim import HibachiSim
from exchanges.sim.http import Request, Response
from tests.helpers import wait_until
from tests.venues.hibachi_ws_kit import (
    Nonces,
    Socket,
    account_socket,
    cancel_signature,
    order_params,
    sync,
    topics,
)

BTC, SOL = "BTC/USDT-P", "SOL/USDT-P"
FILLED_ONCE = ["ORDER_CREATED", "trade_update", "position_update", "balance_update", "ORDER_UPDATED"]


@pytest.fixture
def sim() -> Iterator[HibachiSim]:
    s = HibachiSim(seed=5, collateral=D(1_000_000), publish_interval_s=0.02).start()
    yield s
    s.stop()


def _refused(sock: Socket) -> dict[str, Any]:
    frame = sock.recv()
    with pytest.raises(ConnectionClosed):
        sock.recv()
    return frame


def test_a_wrong_key_or_account_is_refused_like_rest(sim: HibachiSim) -> None:
    creds = sim.paper
    other = sim.add_account("other", D(100))
    cases = [
        (sim.ws_account_url(), "wrong-key", 401, 1),
        (sim.ws_account_url(other.account_id), creds.api_key, 401, 1),
        (sim.ws_trade_url(), "wrong-key", 401, 1),
        (sim.ws_account_url().split("?")[0], creds.api_key, 400, 4),
    ]
    for url, key, status, code in cases:
        frame = _refused(Socket(url, key))
        assert (frame["status"], frame["error"]["errorCode"], frame["error"]["status"]) == (status, code, "failed")
    rest = requests.get(sim.api_url + "/trade/account/info", params={"accountId": creds.account_id},
                        headers={"Authorization": "wrong-key"}, timeout=5)  # fmt: skip
    assert rest.status_code == 401 and rest.json()["errorCode"] == 1


def test_stream_start_returns_the_snapshot_and_a_listen_key() -> None:
    # A fake clock holds the price still: the snapshot's equity and the one read after it must agree exactly.
    with HibachiSim(clock=FakeClock(), seed=5, collateral=D(1_000_000)) as sim:
        _check_snapshot(sim)


def _check_snapshot(sim: HibachiSim) -> None:
    sim.engine.place(sim.account(), symbol=BTC, side=Side.SHORT, order_type=OrderType.MARKET, quantity=D("0.5"))
    sock = Socket(sim.ws_account_url(), sim.paper.api_key)
    reply = sock.request("stream.start", {"accountId": sim.paper.account_id})
    assert reply["status"] == 200
    snapshot = reply["result"]["accountSnapshot"]
    assert snapshot["account_id"] == sim.paper.account_id
    assert D(snapshot["balance"]) == sim.engine.equity(sim.account()).quantize(D("0.000001"))
    (position,) = snapshot["positions"]
    assert (position["symbol"], position["direction"], position["quantity"]) == (BTC, "Short", "0.5")
    assert len(reply["result"]["listenKey"]) == 32
    wrong = sock.request("stream.start", {"accountId": sim.paper.account_id + 1})
    assert wrong["status"] == 401
    sock.close()


def test_the_listen_key_expires_without_a_ping_on_the_injected_clock() -> None:
    clock = FakeClock()
    with HibachiSim(clock=clock, seed=5, listen_key_ttl_s=10.0) as sim:
        sock, key = account_socket(sim)
        place = {"symbol": SOL, "side": Side.LONG, "order_type": OrderType.MARKET, "quantity": D(1)}
        clock.advance(6)
        assert sync(sock, sim.paper, key)["status"] == 200  # renewed at t=6
        clock.advance(6)
        sim.engine.place(sim.account(), **place)  # type: ignore[arg-type]
        assert sync(sock, sim.paper, key)["status"] == 200
        assert topics(sock.events()) == FILLED_ONCE
        clock.advance(10.5)
        sim.engine.place(sim.account(), **place)  # type: ignore[arg-type]
        expired = sync(sock, sim.paper, key)
        assert (expired["status"], expired["error"]["errorCode"]) == (400, 4)
        assert len(sock.events()) == len(FILLED_ONCE)  # nothing pushed after expiry
        restarted = sock.request("stream.start", {"accountId": sim.paper.account_id})
        assert restarted["result"]["listenKey"] != key
        sim.engine.place(sim.account(), **place)  # type: ignore[arg-type]
        sync(sock, sim.paper, restarted["result"]["listenKey"])
        assert len(sock.events()) == 2 * len(FILLED_ONCE)
        sock.close()


def test_a_market_order_filled_at_once_pushes_everything_before_the_rest_reply(sim: HibachiSim) -> None:
    sock, key = account_socket(sim)
    at_reply: list[int] = []

    def observe(handler: Any) -> Any:
        def run(request: Request) -> Response:
            response = handler(request)
            at_reply.append(sim.account_streams.events_sent)
            return response

        return run

    sim.http.wrap_route("POST", "/trade/order", observe)
    params, signature = order_params(sim, sim.paper, Nonces(sim)(), BTC, Side.LONG, "0.001", clientId="c-7")
    headers = {"Authorization": sim.paper.api_key}
    reply = requests.post(sim.api_url + "/trade/order", json=params | {"signature": signature}, headers=headers,
                          timeout=5)  # fmt: skip
    assert reply.status_code == 200
    assert at_reply == [len(FILLED_ONCE)]
    sync(sock, sim.paper, key)
    events = sock.events()
    assert topics(events) == FILLED_ONCE
    created, fill, position, balance, updated = (e["data"] for e in events)
    order_id = reply.json()["orderId"]
    assert (created["orderId"], created["status"], created["filledQuantity"]) == (order_id, "PLACED", "0")
    assert fill["orderId"] == order_id and fill["clientId"] == "c-7" and fill["nonce"] == params["nonce"]
    assert (fill["symbol"], fill["side"], fill["quantity"], fill["filledQuantity"]) == (BTC, "Buy", "0.001", "0.001")
    assert fill["orderStatus"] == "FILLED" and fill["isTaker"] is True and D(fill["fee"]) > 0
    assert fill["id"] == sim.account().fills[-1].trade_id
    assert (position["direction"], position["quantity"]) == ("Long", "0.001")
    assert D(balance["balance"]) > 0
    assert (updated["status"], updated["availableQuantity"], updated["filledQuantity"]) == ("FILLED", "0", "0.001")


def test_an_order_filled_in_two_fills_reports_each_with_the_cumulative_quantity(sim: HibachiSim) -> None:
    sock, key = account_socket(sim)
    sim.engine.place(sim.account(), symbol=SOL, side=Side.SHORT, order_type=OrderType.MARKET, quantity=D(600))
    sync(sock, sim.paper, key)
    events = sock.events()
    assert topics(events) == ["ORDER_CREATED", "trade_update", "trade_update", *FILLED_ONCE[2:]]
    first, second = events[1]["data"], events[2]["data"]
    assert (first["quantity"], first["filledQuantity"], first["orderStatus"]) == ("500", "500", "PARTIALLY_FILLED")
    assert (second["quantity"], second["filledQuantity"], second["orderStatus"]) == ("100", "600", "FILLED")
    assert D(first["price"]) > D(second["price"])  # a sell walks down the bids
    assert first["id"] != second["id"]


def test_a_partial_fill_ends_cancelled_and_says_so_on_its_fill(sim: HibachiSim) -> None:
    sock, key = account_socket(sim)
    sim.engine.faults.partial_fills(1, D("0.5"))
    sim.engine.place(sim.account(), symbol=SOL, side=Side.LONG, order_type=OrderType.MARKET, quantity=D(10))
    sync(sock, sim.paper, key)
    events = sock.events()
    fill, last = events[1]["data"], events[-1]
    assert (fill["quantity"], fill["filledQuantity"], fill["orderStatus"]) == ("5", "5", "CANCELLED")
    assert (last["topic"], last["data"]["status"], last["data"]["availableQuantity"]) == ("ORDER_UPDATED", "CANCELLED",
                                                                                          "5")  # fmt: skip


def test_a_resting_order_fills_later_as_maker(sim: HibachiSim) -> None:
    sock, key = account_socket(sim)
    mark = sim.engine.mark(SOL)
    order = sim.engine.place(sim.account(), symbol=SOL, side=Side.LONG, order_type=OrderType.LIMIT, quantity=D(2),
                             price=(mark * D("0.995")).quantize(D("0.001")))  # fmt: skip
    sync(sock, sim.paper, key)
    assert topics(sock.events()) == ["ORDER_CREATED"]
    sim.prices.jump("SOL", D(-2))
    sim.engine.tick()
    sync(sock, sim.paper, key)
    later = sock.events()[1:]
    assert topics(later) == ["trade_update", "position_update", "balance_update", "ORDER_UPDATED"]
    assert later[0]["data"]["isTaker"] is False and later[0]["data"]["orderId"] == order.id


def test_the_trade_socket_places_checks_and_cancels_with_one_reply_each(sim: HibachiSim) -> None:
    creds, nonce = sim.paper, Nonces(sim)
    trade = Socket(sim.ws_trade_url(), creds.api_key)
    placed = trade.request("order.place", *order_params(sim, creds, nonce(), BTC, Side.LONG, "0.001"))
    assert placed["status"] == 200 and set(placed["result"]) == {"orderId"}
    mark = sim.engine.mark(SOL)
    low = str((mark / 2).quantize(D("0.001")))
    resting = trade.request("order.place", *order_params(sim, creds, nonce(), SOL, Side.LONG, "1", low))
    order_id = resting["result"]["orderId"]
    status = trade.request("order.status", {"accountId": creds.account_id, "orderId": order_id})
    assert (status["result"]["status"], D(status["result"]["price"])) == ("PLACED", D(low))
    listed = trade.request("orders.status", {"accountId": creds.account_id})
    assert [o["orderId"] for o in listed["result"]] == [order_id]
    params, _ = order_params(sim, creds, nonce(), BTC, Side.LONG, "0.001")
    forged = trade.request("order.place", params, "00" * 32)
    assert (forged["status"], forged["error"]["errorCode"]) == (400, 2)
    bad_cancel = trade.request("order.cancel", {"accountId": creds.account_id, "orderId": order_id}, "00" * 32)
    assert bad_cancel["error"]["errorCode"] == 2
    cancelled = trade.request("order.cancel", {"accountId": creds.account_id, "orderId": order_id},
                              cancel_signature(creds, order_id))  # fmt: skip
    assert cancelled["status"] == 200
    status = trade.request("order.status", {"accountId": creds.account_id, "orderId": order_id})
    assert status["result"]["status"] == "CANCELLED"
    unknown = trade.request("order.teleport", {})
    assert (unknown["status"], unknown["error"]["errorCode"]) == (400, 4)
    assert len(trade.frames) == 9  # one reply per request, nothing else
    trade.close()


def test_cancel_on_disconnect_cancels_the_accounts_orders_when_the_socket_drops(sim: HibachiSim) -> None:
    creds, nonce = sim.paper, Nonces(sim)
    low = str((sim.engine.mark(SOL) / 2).quantize(D("0.001")))
    keeper = Socket(sim.ws_trade_url(), creds.api_key)
    kept = keeper.request("order.place", *order_params(sim, creds, nonce(), SOL, Side.LONG, "1", low))
    keeper.close()
    trade = Socket(sim.ws_trade_url(), creds.api_key)
    enabled = trade.request("orders.enableCancelOnDisconnect", {"nonce": nonce()})
    assert enabled["status"] == 200
    placed = trade.request("order.place", *order_params(sim, creds, nonce(), SOL, Side.LONG, "1", low))
    sock, key = account_socket(sim)
    trade.close()
    wait_until(lambda: sim.trade_sessions.cancels_on_disconnect == 2, what="cancel on disconnect")
    for reply in (kept, placed):
        assert sim.account().orders[reply["result"]["orderId"]].status.is_final
    sync(sock, sim.paper, key)
    assert topics(sock.events()) == ["ORDER_CANCELED", "ORDER_CANCELED"]


def test_list_subscription_reports_this_connections_subscriptions(sim: HibachiSim) -> None:
    market = Socket(sim.ws_market_url)
    subs = [{"symbol": BTC, "topic": "mark_price"}, {"symbol": SOL, "topic": "orderbook", "depth": 2,
                                                     "granularity": "0.01"}]  # fmt: skip
    market.send({"method": "subscribe", "parameters": {"subscriptions": subs}})
    snapshot = market.recv()
    assert (snapshot["topic"], snapshot["messageType"]) == ("orderbook", "Snapshot")
    assert len(snapshot["data"]["bid"]["levels"]) <= 2
    market.send({"method": "list_subscription", "id": 9})
    listed = _next_with(market, lambda f: f.get("method") == "list_subscription")
    assert sorted(listed["result"]["subscriptions"], key=lambda x: x["topic"]) == sorted(subs, key=lambda x: x["topic"])
    market.send({"method": "unsubscribe", "parameters": {"subscriptions": [subs[0]]}})
    market.send({"method": "list_subscription"})
    listed = _next_with(market, lambda f: f.get("method") == "list_subscription")
    assert listed["result"]["subscriptions"] == [subs[1]]
    other = Socket(sim.ws_market_url)
    other.send({"method": "list_subscription"})
    assert other.recv()["result"]["subscriptions"] == []
    market.send({"method": "subscribe", "parameters": {"subscriptions": [{"symbol": BTC, "topic": "weather"}]}})
    assert _next_with(market, lambda f: "error" in f)["error"]["errorCode"] == 4
    market.send({"method": "teleport"})
    assert "teleport" in _next_with(market, lambda f: "error" in f)["error"]["message"]
    market.close()
    other.close()


def test_every_market_topic_is_served(sim: HibachiSim) -> None:
    market = Socket(sim.ws_market_url)
    wanted = ["mark_price", "spot_price", "ask_bid_price", "funding_rate_estimation", "trades", "klines", "orderbook"]
    market.send({"method": "subscribe", "parameters": {"subscriptions": [{"symbol": SOL, "topic": t} for t in wanted]}})
    seen: set[str] = set()
    market.recv()  # the orderbook snapshot
    sim.engine.place(sim.account(), symbol=SOL, side=Side.LONG, order_type=OrderType.MARKET, quantity=D(1))
    sim.prices.jump("SOL", D(1))
    while seen != set(wanted):
        seen.add(market.recv()["topic"])
    updates = [f for f in market.frames if f["topic"] == "orderbook"]
    assert updates[0]["messageType"] == "Snapshot" and all(f["messageType"] == "Update" for f in updates[1:])
    market.close()


def test_an_unknown_path_gets_an_error_frame(sim: HibachiSim) -> None:
    frame = _refused(Socket(sim.ws_market_url.replace("/ws/market", "/ws/other")))
    assert (frame["status"], frame["error"]["errorCode"]) == (404, 3)


def test_account_stream_fault_knobs(sim: HibachiSim) -> None:
    def fault(spec: dict[str, Any]) -> dict[str, Any]:
        reply = requests.post(sim.api_url + "/_sim/fault", json=spec, timeout=5)
        assert reply.status_code == 200, reply.text
        return reply.json()

    place = {"symbol": SOL, "side": Side.LONG, "order_type": OrderType.MARKET, "quantity": D(1)}
    sock, key = account_socket(sim)
    fault({"kind": "silence_private", "on": True})
    sim.engine.place(sim.account(), **place)  # type: ignore[arg-type]
    assert sync(sock, sim.paper, key)["status"] == 200  # still answers
    assert sock.events() == []
    fault({"kind": "silence_private", "on": False})
    fault({"kind": "reorder_private", "count": 1})
    sim.engine.place(sim.account(), **place)  # type: ignore[arg-type]
    sync(sock, sim.paper, key)
    assert topics(sock.events()) == FILLED_ONCE[::-1]
    sim.engine.place(sim.account(), **place)  # type: ignore[arg-type]
    sync(sock, sim.paper, key)
    assert topics(sock.events()[5:]) == FILLED_ONCE  # one batch only
    assert fault({"kind": "drop_private_ws"}) == {"dropped": 1}
    with pytest.raises(ConnectionClosed):
        while True:
            sock.recv()
    taken = sim.engine.faults.taken
    assert (taken["silence_private"], taken["reorder_private"], taken["drop_private_ws"]) == (1, 1, 1)


def _next_with(sock: Socket, predicate: Any) -> dict[str, Any]:
    while True:
        frame = sock.recv()
        if predicate(frame):
            return frame


def test_an_order_placed_on_the_trade_socket_is_logged_as_sent_by_its_handshake_user_agent(sim: HibachiSim) -> None:
    creds, nonce = sim.paper, Nonces(sim)
    ours = Socket(sim.ws_trade_url(), creds.api_key, user_agent_header="perp-farmer/0.1 (session 0000cafe)")
    bare = Socket(sim.ws_trade_url(), creds.api_key, user_agent_header=None)  # no User-Agent at the handshake
    first = ours.request("order.place", *order_params(sim, creds, nonce(), BTC, Side.LONG, "0.001", clientId="w-1"))
    second = bare.request("order.place", *order_params(sim, creds, nonce(), BTC, Side.SHORT, "0.001"))
    ours.close()
    bare.close()
    orders = requests.get(f"{sim.api_url}/_sim/orders", timeout=5).json()["orders"]
    assert [(o["order_id"], o["account"], o["client_id"], o["sender"], o["session"]) for o in orders] == [
        (first["result"]["orderId"], "paper", "w-1", "perp-farmer/0.1 (session 0000cafe)", "0000cafe"),
        (second["result"]["orderId"], "paper", None, "ws", None),
    ]
