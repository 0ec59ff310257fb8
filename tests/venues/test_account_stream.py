"""The private account stream against a scripted websocket server: subscribing (Backpack's signed frame,
Hibachi's listen key), reading order events, trust, reconnection and waiting."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest
from nacl.signing import VerifyKey

from core.clock import FakeClock, SystemClock
from core.domain import Side
from exchanges.account_book import OrderView
from exchanges.account_stream import AccountStream, StreamTimings
from exchanges.backpack.account_events import BackpackAccountDialect
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.signing import BackpackSigner
from exchanges.base import OrderRequest, OrderResult, OrderStatus
from exchanges.hibachi.account_events import HibachiAccountDialect, account_url
from exchanges.hibachi.client import HibachiClient
from tests.helpers import wait_until
from tests.venues.account_server import ScriptedServer

SECRET = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="  # spec §2 test seed
KEY = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
NOW_MS = 1_700_000_000_000
FAST = StreamTimings(keepalive_s=0.05, quiet_after_s=5.0, reconnect_min_s=0.02, reconnect_max_s=0.1, recv_tick_s=0.02)


def settled(view: OrderView) -> bool:
    return view.settled


# ---- Backpack ---------------------------------------------------------------------------------------------


def bp_update(e: str, status: str, z: str, zq: str, **extra: Any) -> str:
    data = {"e": e, "E": 1_700_000_000_123_456, "s": "BTC_USDC_PERP", "i": "111", "c": 42, "S": "Bid",
            "o": "MARKET", "f": "GTC", "q": "0.5", "r": False, "X": status, "z": z, "Z": zq, "V": "RejectTaker",
            "O": "USER", "T": 1_700_000_000_123_456} | extra  # fmt: skip
    return json.dumps({"stream": "account.orderUpdate", "data": data})


def bp_fill(status: str, qty: str, cum: str, cum_quote: str, trade: int, price: str = "100.5") -> str:
    return bp_update("orderFill", status, cum, cum_quote, l=qty, L=price, t=trade, m=False, n="0.02", N="USDC")


@pytest.fixture
def bp_server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def bp_stream(server: ScriptedServer, clock: Any = None, timings: StreamTimings = FAST) -> AccountStream:
    dialect = BackpackAccountDialect(server.url, BackpackSigner(KEY, SECRET), lambda: NOW_MS)
    return AccountStream(dialect, clock or SystemClock(), timings).start()


def test_backpack_subscribes_with_a_signed_frame_and_settles_an_order(bp_server: ScriptedServer) -> None:
    stream = bp_stream(bp_server)
    try:
        frame = json.loads(bp_server.next_frame())
        assert frame["method"] == "SUBSCRIBE" and frame["params"] == ["account.orderUpdate"]
        key, signature, ts, window = frame["signature"]
        assert (key, ts, window) == (KEY, str(NOW_MS), "5000")
        VerifyKey(base64.b64decode(KEY)).verify(
            f"instruction=subscribe&timestamp={NOW_MS}&window=5000".encode(), base64.b64decode(signature)
        )
        wait_until(stream.healthy, what="subscribed")
        epoch = stream.epoch
        bp_server.push(bp_update("orderAccepted", "New", "0", "0"), bp_fill("Filled", "0.5", "0.5", "50.25", 77))
        view = stream.wait_for("111", settled, 5.0, epoch)
        assert view is not None and view.status is OrderStatus.FILLED
        assert (view.client_id, view.symbol, view.side) == ("42", "BTC_USDC_PERP", Side.LONG)
        assert view.filled_quantity == D("0.5") and view.filled_quote == D("50.25")
        (fill,) = view.fills
        assert (fill.venue_fill_id, fill.venue_order_id, fill.client_id) == ("77", "111", "42")
        assert (fill.price, fill.quantity, fill.fee, fill.fee_asset, fill.is_maker) == (
            D("100.5"), D("0.5"), D("0.02"), "USDC", False,
        )  # fmt: skip
        # µs engine time cut to the ms the REST fill history has.
        assert fill.ts == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    finally:
        stream.stop()


def test_backpack_events_out_of_order_or_repeated_do_not_regress(bp_server: ScriptedServer) -> None:
    stream = bp_stream(bp_server)
    try:
        wait_until(stream.healthy, what="subscribed")
        epoch = stream.epoch
        bp_server.push(
            bp_fill("Filled", "0.2", "0.5", "50", 2),
            bp_update("orderAccepted", "New", "0", "0"),
            bp_fill("Filled", "0.2", "0.5", "50", 2),
        )
        wait_until(lambda: stream.events == 3, what="three events")
        view = stream.order("111")
        assert view is not None and view.status is OrderStatus.FILLED and view.filled_quantity == D("0.5")
        assert view.fills_quantity == D("0.2") and not view.settled  # the first fill is still to come
        bp_server.push(bp_fill("PartiallyFilled", "0.3", "0.3", "30", 1))
        view = stream.wait_for("111", settled, 5.0, epoch)
        assert view is not None and [f.venue_fill_id for f in view.fills] == ["1", "2"]
        assert view.status is OrderStatus.FILLED
    finally:
        stream.stop()


def test_backpack_stream_reconnects_resubscribes_and_starts_a_new_epoch(bp_server: ScriptedServer) -> None:
    stream = bp_stream(bp_server)
    try:
        bp_server.next_frame()
        wait_until(stream.healthy, what="subscribed")
        first = stream.epoch
        bp_server.drop()
        assert json.loads(bp_server.next_frame())["method"] == "SUBSCRIBE"  # signed and sent again
        wait_until(lambda: stream.epoch == first + 1 and stream.healthy(), what="resubscribed")
        bp_server.push(bp_update("orderAccepted", "New", "0", "0"), bp_fill("Filled", "0.5", "0.5", "50", 3))
        assert stream.wait_for("111", settled, 5.0, first + 1) is not None
        # An order sent during the first subscription may have had events in the gap: no answer from here.
        assert stream.wait_for("111", settled, 5.0, first) is None
    finally:
        stream.stop()


def test_a_refused_subscription_is_not_trusted_and_is_tried_again() -> None:
    def refuse(_frame: str, _server: ScriptedServer) -> list[str]:
        return [json.dumps({"id": None, "error": {"code": 4006, "message": "Invalid signature"}})]

    with ScriptedServer(refuse) as server:
        stream = bp_stream(server)
        try:
            wait_until(lambda: stream.epoch >= 1, what="the first subscription sent")
            refused = stream.epoch
            wait_until(lambda: server.connections >= 2 and stream.epoch > refused, what="a second attempt")
            # An order sent under the refused subscription is not waited on: its events may never come.
            assert stream.wait_for("111", settled, 60.0, refused) is None
        finally:
            stream.stop()


def test_a_quiet_stream_is_not_trusted_and_is_reopened(bp_server: ScriptedServer) -> None:
    clock = FakeClock()
    stream = bp_stream(bp_server, clock, StreamTimings(keepalive_s=5, quiet_after_s=15, reconnect_min_s=0.02,
                                                       recv_tick_s=0.02))  # fmt: skip
    try:
        wait_until(stream.healthy, what="subscribed")
        clock.advance(16)  # no frame and no pong for longer than quiet_after_s
        assert not stream.healthy()
        assert stream.wait_for("111", settled, 60.0, stream.epoch) is None
        wait_until(lambda: bp_server.connections == 2 and stream.healthy(), what="a fresh connection")
    finally:
        stream.stop()


def test_a_wait_gives_up_at_once_on_a_stream_not_yet_subscribed() -> None:
    with ScriptedServer() as server:  # never answers stream.start
        stream = AccountStream(HibachiAccountDialect(server.url, "key", 7, SystemClock()), SystemClock(), FAST)
        stream.start()
        try:
            server.next_frame()
            assert not stream.healthy() and stream.epoch == 0
            started = time.monotonic()
            assert stream.wait_for("1", settled, 30.0, 0) is None
            assert time.monotonic() - started < 5.0
        finally:
            stream.stop()


def test_a_wait_times_out_when_the_order_is_not_heard(bp_server: ScriptedServer) -> None:
    stream = bp_stream(bp_server)
    try:
        wait_until(stream.healthy, what="subscribed")
        assert stream.wait_for("111", settled, 0.05, stream.epoch) is None
        assert stream.healthy()
    finally:
        stream.stop()


def test_a_stream_that_tells_nothing_is_distrusted_until_it_tells_again(bp_server: ScriptedServer) -> None:
    stream = bp_stream(bp_server, timings=StreamTimings(keepalive_s=0.05, recv_tick_s=0.02, max_misses=2))
    try:
        wait_until(stream.healthy, what="subscribed")
        epoch = stream.epoch
        assert stream.wait_for("111", settled, 0.02, epoch) is None
        assert stream.healthy()
        assert stream.wait_for("111", settled, 0.02, epoch) is None
        assert not stream.healthy()  # two waits in vain: the next order goes to REST at once
        bp_server.push(bp_update("orderAccepted", "New", "0", "0"))
        wait_until(stream.healthy, what="trust restored by an event")
    finally:
        stream.stop()


# ---- Hibachi ----------------------------------------------------------------------------------------------


def hb_order(topic: str, status: str, available: str, filled: str, key: str = "topic") -> str:
    data = {"orderId": "5787", "accountId": 7, "contractId": 2, "symbol": "BTC/USDT-P", "side": "ASK",
            "orderType": "MARKET", "price": None, "totalQuantity": "0.3", "availableQuantity": available,
            "filledQuantity": filled, "avgFillPrice": None, "status": status, "creationTime": 1_700_000_000,
            "orderFlags": None, "triggerPrice": None, "triggerDirection": None, "clientId": "abc-1",
            "nonce": 5}  # fmt: skip
    return json.dumps({key: topic, "accountId": 7, "timestamp_ms": NOW_MS, "data": data})


def hb_trade(trade_id: int, qty: str, cum: str, status: str, price: str = "60000.5") -> str:
    data = {"id": trade_id, "orderId": "5787", "clientId": "abc-1", "nonce": 5, "symbol": "BTC/USDT-P",
            "side": "Sell", "orderType": "MARKET", "price": price, "quantity": qty, "fee": "0.009",
            "realizedPnl": "0", "isTaker": True, "timestamp": 1_700_000_000, "timestamp_ns_partial": 250_000_000,
            "filledQuantity": cum, "totalQuantity": "0.3", "orderStatus": status}  # fmt: skip
    return json.dumps({"topic": "trade_update", "accountId": 7, "timestamp_ms": NOW_MS, "data": data})


class HibachiScript:
    """Answers stream.start with a listen key and stream.ping with 200 (or `ping_status`)."""

    def __init__(self, ping_status: int = 200) -> None:
        self.ping_status = ping_status
        self.pings: list[dict[str, Any]] = []

    def __call__(self, frame: str, _server: ScriptedServer) -> list[str]:
        msg = json.loads(frame)
        if msg["method"] == "stream.start":
            result = {"accountSnapshot": {"account_id": 7, "balance": "1", "positions": []}, "listenKey": "k" * 32}
            return [json.dumps({"id": msg["id"], "status": 200, "result": result})]
        if msg["method"] == "stream.ping":
            self.pings.append(msg)
            if self.ping_status != 200:
                error = {"errorCode": 4, "message": "listenKey expired or unknown", "status": "failed"}
                return [json.dumps({"id": msg["id"], "status": self.ping_status, "error": error})]
            return [json.dumps({"id": msg["id"], "status": 200, "result": {}})]
        return []


def hb_stream(server: ScriptedServer) -> AccountStream:
    return AccountStream(HibachiAccountDialect(server.url, "the-key", 7, SystemClock()), SystemClock(), FAST).start()


def test_hibachi_starts_a_stream_pings_its_key_and_settles_an_order() -> None:
    script = HibachiScript()
    with ScriptedServer(script) as server:
        stream = hb_stream(server)
        try:
            start = json.loads(server.next_frame())
            assert start["method"] == "stream.start" and start["params"] == {"accountId": 7}
            assert isinstance(start["timestamp"], int)
            request = server.requests[0]
            assert request.headers["Authorization"] == "the-key" and request.path == "/stream?accountId=7"
            wait_until(stream.healthy, what="stream started")
            wait_until(lambda: bool(script.pings), what="a listen-key ping")
            assert script.pings[0]["params"] == {"accountId": 7, "listenKey": "k" * 32}
            epoch = stream.epoch
            server.push(
                hb_order("ORDER_CREATED", "PLACED", "0.3", "0"),
                hb_trade(900, "0.1", "0.1", "PARTIALLY_FILLED"),
                hb_order("ORDER_UPDATED", "FILLED", "0", "0.3", key="event"),  # the Go SDK's key
            )
            wait_until(lambda: stream.events == 3, what="three events")
            view = stream.order("5787")
            assert view is not None and view.status is OrderStatus.FILLED and not view.settled
            server.push(hb_trade(901, "0.2", "0.3", "FILLED", "60001"))
            view = stream.wait_for("5787", settled, 5.0, epoch)
            assert view is not None and view.client_id == "abc-1" and view.side is Side.SHORT
            assert view.created_at == datetime.fromtimestamp(1_700_000_000, UTC)
            first, second = view.fills
            assert (first.venue_fill_id, first.quantity, first.price) == ("900", D("0.1"), D("60000.5"))
            assert first.fee == D("0.009")
            assert (second.venue_fill_id, second.price, second.is_maker) == ("901", D("60001"), False)
            assert second.fee_asset == "USDT"
            assert first.client_id is None  # as the REST trade journal has it
            assert first.ts == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)
        finally:
            stream.stop()


def test_hibachi_a_refused_ping_starts_over_with_a_new_stream() -> None:
    script = HibachiScript(ping_status=400)
    with ScriptedServer(script) as server:
        stream = hb_stream(server)
        try:
            wait_until(lambda: server.connections >= 2, what="a new connection")
            starts: list[str] = []
            wait_until(lambda: starts.append(json.loads(server.next_frame())["method"]) is None
                       and starts.count("stream.start") >= 2, what="a second stream.start")  # fmt: skip
        finally:
            stream.stop()


def test_hibachi_account_url_carries_the_account_id_once() -> None:
    assert account_url("wss://api.hibachi.xyz/ws/account", 12) == "wss://api.hibachi.xyz/ws/account?accountId=12"
    assert account_url("ws://127.0.0.1:5/ws/account?accountId=3", 12) == "ws://127.0.0.1:5/ws/account?accountId=3"


def test_backpack_client_finishes_an_unfinished_market_reply_from_the_stream(bp_server: ScriptedServer) -> None:
    client = BackpackClient("http://127.0.0.1:9", KEY, SECRET, account_ws_url=bp_server.url, stream_wait_s=5.0,
                            stream_timings=FAST)  # fmt: skip
    try:
        stream = client.account_stream
        assert stream is not None
        wait_until(stream.healthy, what="subscribed")
        reply = OrderResult("111", "42", "BTC_USDC_PERP", Side.LONG, OrderStatus.NEW, D("0.5"), D(0), None)
        bp_server.push(
            bp_update("orderAccepted", "New", "0", "0"),
            bp_fill("PartiallyFilled", "0.2", "0.2", "20", 1, "100"),
            bp_update("orderExpired", "Expired", "0.2", "20", R="ImmediateOrCancel"),
        )
        result = client._with_fills(reply, immediate=True, epoch=stream.epoch)
        assert (result.status, result.filled_quantity, result.average_price) == (OrderStatus.EXPIRED, D("0.2"), D(100))
        assert result.fee == D("0.02") and result.fills is not None and len(result.fills) == 1
        assert client.stream_settled == 1
    finally:
        client.close()
    assert not stream.healthy()  # closed with the client


def test_backpack_an_expiry_without_a_count_does_not_settle_an_order_as_unfilled(bp_server: ScriptedServer) -> None:
    # The fill of this IOC is late (or lost) and its expiry event carries no `z` (optional in the AsyncAPI):
    # the stream cannot say how much filled, so the client must not report "expired, nothing filled".
    client = BackpackClient("http://127.0.0.1:9", KEY, SECRET, account_ws_url=bp_server.url, stream_wait_s=0.3,
                            stream_timings=FAST, get_retries=0)  # fmt: skip
    try:
        stream = client.account_stream
        assert stream is not None
        wait_until(stream.healthy, what="subscribed")
        reply = OrderResult("111", "42", "BTC_USDC_PERP", Side.LONG, OrderStatus.NEW, D("0.5"), D(0), None)
        expired = json.loads(bp_update("orderExpired", "Expired", "0", "0", R="ImmediateOrCancel"))
        del expired["data"]["z"], expired["data"]["Z"]
        bp_server.push(bp_update("orderAccepted", "New", "0", "0"), json.dumps(expired))
        wait_until(lambda: stream.events == 2, what="two events")
        result = client._with_fills(reply, immediate=True, epoch=stream.epoch)
        assert result.status is OrderStatus.NEW and client.stream_settled == 0  # the reply as is: read later
    finally:
        client.close()


def test_hibachi_an_order_that_ended_unfilled_on_the_stream_is_read_from_history() -> None:
    # availableQuantity of a cancelled order is undefined (spec; get_order reads order history instead): an
    # ORDER_CANCELED that says "nothing filled", with the trade still to come, must not settle the order.
    with ScriptedServer(HibachiScript()) as server:
        client = HibachiClient("http://127.0.0.1:9", "http://127.0.0.1:9", "the-key", 7, None,
                               account_ws_url=server.url, stream_wait_s=0.3, stream_timings=FAST)  # fmt: skip
        try:
            stream = client.account_stream
            assert stream is not None
            wait_until(stream.healthy, what="stream started")
            server.push(hb_order("ORDER_CANCELED", "CANCELLED", "0.3", "0"))
            wait_until(lambda: stream.events == 1, what="the cancel")
            request = OrderRequest("abc-1", "BTC/USDT-P", Side.SHORT, D("0.3"))
            assert client._from_stream(request, "5787", stream.epoch) is None
        finally:
            client.close()


def test_an_unexpected_error_in_the_stream_thread_starts_over_instead_of_ending_it(bp_server: ScriptedServer) -> None:
    # json.loads raises RecursionError (not a ValueError) on deeply nested input: it escaped every handler and
    # ended the thread, leaving the stream untrusted for good with nothing but a traceback on stderr.
    stream = bp_stream(bp_server)
    try:
        wait_until(stream.healthy, what="subscribed")
        first = stream.epoch
        bp_server.push("[" * 100_000 + "]" * 100_000)
        wait_until(lambda: stream.epoch > first and stream.healthy(), what="subscribed again")
        bp_server.push(bp_update("orderAccepted", "New", "0", "0"), bp_fill("Filled", "0.5", "0.5", "50", 3))
        assert stream.wait_for("111", settled, 5.0, stream.epoch) is not None
    finally:
        stream.stop()


def test_a_stream_that_tells_nothing_subscribes_again(bp_server: ScriptedServer) -> None:
    # A subscription the venue dropped (or a dead listen key) behind a socket that still answers pings: no
    # event would ever come to restore trust, so every order went to REST for good. It is opened afresh.
    stream = bp_stream(bp_server, timings=StreamTimings(keepalive_s=0.05, recv_tick_s=0.02, max_misses=2))
    try:
        wait_until(stream.healthy, what="subscribed")
        epoch = stream.epoch
        for _ in range(2):
            assert stream.wait_for("111", settled, 0.02, epoch) is None
        wait_until(lambda: bp_server.connections >= 2 and stream.epoch > epoch and stream.healthy(),
                   what="subscribed again")  # fmt: skip
        bp_server.push(bp_update("orderAccepted", "New", "0", "0"), bp_fill("Filled", "0.5", "0.5", "50", 3))
        assert stream.wait_for("111", settled, 5.0, stream.epoch) is not None
    finally:
        stream.stop()


def test_hibachi_a_stream_that_tells_nothing_starts_again_and_stays() -> None:
    # Hibachi is subscribed only once stream.start is answered: the misses of the old session must not end the
    # new one before that answer comes.
    def slow_start(frame: str, server: ScriptedServer) -> list[str]:
        if json.loads(frame)["method"] == "stream.start":
            time.sleep(0.1)  # the venue's round trip, longer than the receive tick
        return HibachiScript()(frame, server)

    timings = StreamTimings(keepalive_s=0.05, recv_tick_s=0.02, max_misses=2, reconnect_min_s=0.02)
    with ScriptedServer(slow_start) as server:
        stream = AccountStream(HibachiAccountDialect(server.url, "the-key", 7, SystemClock()), SystemClock(), timings)
        stream.start()
        try:
            wait_until(stream.healthy, what="stream started")
            epoch = stream.epoch
            for _ in range(2):
                assert stream.wait_for("5787", settled, 0.02, epoch) is None
            wait_until(lambda: stream.epoch > epoch and stream.healthy(), what="started again")
            assert server.connections == 2
        finally:
            stream.stop()


def test_listeners_hear_every_order_event_with_its_arrival_and_a_failing_one_harms_nothing(
    bp_server: ScriptedServer,
) -> None:
    stream = bp_stream(bp_server)
    heard: list[tuple[D, int]] = []

    def broken(view: OrderView, arrived_ns: int) -> None:
        raise RuntimeError("a listener's bug")

    def listener(view: OrderView, arrived_ns: int) -> None:
        heard.append((view.filled_quantity, arrived_ns))

    try:
        wait_until(stream.healthy, what="subscribed")
        stream.add_listener(broken)
        stream.add_listener(listener)
        before = time.monotonic_ns()
        bp_server.push(bp_fill("PartiallyFilled", "0.2", "0.2", "20", 1))
        wait_until(lambda: len(heard) == 1, what="the first fill heard")
        # The order as merged so far, stamped when it arrived (what a hedge's delay is measured from).
        assert heard[0][0] == D("0.2") and before <= heard[0][1] <= time.monotonic_ns()
        stream.remove_listener(listener)
        bp_server.push(bp_fill("Filled", "0.3", "0.5", "50", 2))
        wait_until(lambda: stream.events == 2, what="the second fill")
        assert len(heard) == 1  # removed: not called again
        assert stream.healthy()  # the broken listener did not end the stream
        view = stream.order("111")
        assert view is not None and view.filled_quantity == D("0.5")
    finally:
        stream.stop()
