"""The real Hibachi client against the Hibachi simulator over loopback: both key types, every method, every fault."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
import requests

from core.clock import FakeClock, SystemClock
from core.domain import Side
from exchanges.base import OrderRequest, OrderStatus, OrderType, TimeInForce
from exchanges.errors import (
    AuthError,
    InsufficientMargin,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    OrderOutcomeUnknown,
    RateLimited,
    VenueError,
    VenueUnavailable,
)
from exchanges.hibachi import client as client_module
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.signing import HmacSigner, make_signer, order_payload
from exchanges.hibachi.sim import HibachiSim
from exchanges.sim.http import Handler, Request, Response
from tests.venues.conftest import hibachi_client

ROOT = Path(__file__).resolve().parents[2]
BTC = "BTC/USDT-P"


def order(client_id: str, side: Side = Side.LONG, qty: str = "0.01", **kw: object) -> OrderRequest:
    return OrderRequest(client_id, BTC, side, D(qty), **kw)  # type: ignore[arg-type]


def position_qty(sim: HibachiSim) -> D:
    pos = sim.account().positions.get(BTC)
    return pos.quantity if pos else D(0)


@pytest.fixture
def hb1(hb_sim: HibachiSim) -> Iterator[HibachiClient]:
    """One key type (HMAC) for tests where the signer does not matter."""
    client = hibachi_client(hb_sim)
    yield client
    client.close()


# ---- public data and account -----------------------------------------------------------------------------


def test_markets_quote_and_time(hb1: HibachiClient) -> None:
    markets = {m.symbol: m for m in hb1.markets()}
    assert set(markets) == {"BTC/USDT-P", "ETH/USDT-P", "SOL/USDT-P"}
    btc = markets[BTC]
    assert (btc.tick_size, btc.step_size, btc.min_quantity, btc.min_notional, btc.max_leverage) == (
        D("0.1"), D("0.0000000001"), D("0.0000000001"), D(1), D("15.00"),
    )  # fmt: skip
    assert hb1.market(BTC) == btc
    contract = hb1.contract(BTC)
    assert (contract.id, contract.underlying_decimals, contract.settlement_decimals) == (2, 10, 6)
    assert hb1.exchange_info().max_fee_rate == D("0.00045")
    quote = hb1.quote(BTC)
    assert quote.bid is not None and quote.ask is not None and quote.mark is not None
    assert quote.bid < quote.mark < quote.ask
    assert quote.funding_rate == D("0.0000125")
    assert quote.next_funding_time is not None and quote.next_funding_time.minute == 0  # hourly funding
    assert abs(hb1.sync_time()) < 2000
    with pytest.raises(InvalidOrder, match="unknown contract"):
        hb1.market("DOGE/USDT-P")


def test_only_live_contracts_are_tradable(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb1.place_order(order("before-halt"))
    contract_json = hb_sim.contract_json

    def halted(c: object) -> dict[str, object]:
        body = contract_json(c)  # type: ignore[arg-type]
        return body | {"status": "SUSPENDED"} if body["symbol"] == BTC else body

    hb_sim.contract_json = halted  # type: ignore[method-assign]
    assert {m.symbol for m in hb1.markets()} == {"ETH/USDT-P", "SOL/USDT-P"}
    with pytest.raises(InvalidOrder, match="not tradable"):
        hb1.market(BTC)  # what a new pair is planned from
    (pos,) = hb1.positions()  # what is held there is still read, and can be closed
    assert pos.symbol == BTC and hb1.account().initial_requirement > 0
    assert hb1.contract(BTC).id == hb_sim.contracts[BTC].id
    assert hb1.get_order(BTC, "before-halt").filled_quantity == D("0.01")


def test_account_positions_and_per_symbol_leverage(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    account = hb1.account()
    assert account.equity == D(10000)
    assert account.available == D(10000)
    assert account.maintenance_requirement == 0
    assert hb1.positions() == []
    assert hb1.leverage_scope == "market"
    assert hb1.set_leverage(BTC, D(2)) == D(2)
    assert hb_sim.account().market_imr == {BTC: D("0.5")}
    assert hb1.set_leverage(BTC, D(3)) <= D(3)  # rate rounded up: never more leverage than asked
    with pytest.raises(InvalidOrder):
        hb1.set_leverage(BTC, D(80))  # beyond the contract's 15x


# ---- orders, with both key types -----------------------------------------------------------------------------


def test_market_order_fills_and_is_found_by_client_id(hb: HibachiClient, hb_sim: HibachiSim) -> None:
    result = hb.place_order(order("pf-1-L-open-0"))
    assert result.status is OrderStatus.FILLED
    assert result.client_id == "pf-1-L-open-0"
    assert result.filled_quantity == D("0.01")
    assert result.average_price is not None
    assert result.fee == (result.average_price * D("0.01") * D("0.00045")).quantize(D("0.00000001"))
    found = hb.get_order(BTC, "pf-1-L-open-0")
    assert found == result
    (fill,) = hb.fills(BTC, result.venue_order_id)
    assert (fill.quantity, fill.price, fill.fee, fill.is_maker) == (D("0.01"), result.average_price, result.fee, False)
    (pos,) = hb.positions()
    assert (pos.symbol, pos.side, pos.quantity, pos.entry_price) == (BTC, Side.LONG, D("0.01"), result.average_price)
    account = hb.account()
    assert 0 < account.maintenance_requirement < account.initial_requirement < account.equity
    closed = hb.place_order(order("pf-1-L-close-0", Side.SHORT, reduce_only=True))
    assert closed.status is OrderStatus.FILLED
    assert hb.positions() == []
    assert position_qty(hb_sim) == 0


def test_limit_order_rests_then_cancels(hb: HibachiClient, hb_sim: HibachiSim) -> None:
    mark = hb.quote(BTC).mark
    assert mark is not None
    price = (mark * D("0.9")).quantize(D("0.1"))
    resting = hb.place_order(order("rest-1", order_type=OrderType.LIMIT, price=price))
    assert resting.status is OrderStatus.NEW
    assert resting.filled_quantity == 0
    assert [o.client_id for o in hb.open_orders()] == ["rest-1"]
    assert hb.cancel_order(BTC, "rest-1") is None  # accepted; carried out later (here: at once)
    assert hb.get_order(BTC, "rest-1").status is OrderStatus.CANCELLED
    again = hb.cancel_order(BTC, "rest-1")  # nothing left to cancel: the order as it ended
    assert again is not None and again.status is OrderStatus.CANCELLED
    assert hb.open_orders() == []
    with pytest.raises(OrderNotFound):
        hb.cancel_order(BTC, "no-such-order")


def test_post_only_that_would_take_is_rejected(hb1: HibachiClient) -> None:
    ask = hb1.quote(BTC).ask
    assert ask is not None
    result = hb1.place_order(
        order("po-1", order_type=OrderType.LIMIT, price=ask + D(100), time_in_force=TimeInForce.POST_ONLY)
    )
    assert result.status is OrderStatus.REJECTED
    assert result.filled_quantity == 0


def test_ioc_limit_that_crosses_fills(hb1: HibachiClient) -> None:
    ask = hb1.quote(BTC).ask
    assert ask is not None
    result = hb1.place_order(
        order("ioc-1", order_type=OrderType.LIMIT, price=ask + D(50), time_in_force=TimeInForce.IOC)
    )
    assert result.status is OrderStatus.FILLED
    assert result.average_price is not None and result.average_price <= ask + D(50)


def test_reduce_only_that_would_not_reduce_is_not_filled(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    result = hb1.place_order(order("ro-1", Side.SHORT, reduce_only=True))
    assert result.status is OrderStatus.REJECTED
    assert result.filled_quantity == 0
    assert position_qty(hb_sim) == 0


def test_order_beyond_margin_is_refused(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    with pytest.raises(InsufficientMargin) as info:
        hb1.place_order(order("big-1", qty="10"))  # 650k notional on 10k collateral
    assert info.value.code == 4
    assert position_qty(hb_sim) == 0


def test_rules_are_checked_before_anything_is_sent(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    with pytest.raises(InvalidOrder, match="multiple of 1E-10") as info:
        hb1.place_order(order("bad-1", qty="0.00000000005"))
    assert info.value.code == "LOCAL_CHECK"
    with pytest.raises(InvalidOrder, match="multiple of 0.1"):
        hb1.place_order(order("bad-2", order_type=OrderType.LIMIT, price=D("65000.05")))
    with pytest.raises(InvalidOrder, match="one order flag"):
        hb1.place_order(order("bad-3", order_type=OrderType.LIMIT, price=D(65000), time_in_force=TimeInForce.IOC,
                              reduce_only=True))  # fmt: skip
    with pytest.raises(ValueError, match="clientId"):
        hb1.place_order(order("has_underscore"))
    assert hb_sim.account().orders == {}


def test_unknown_order_lookup(hb1: HibachiClient) -> None:
    with pytest.raises(OrderNotFound) as info:
        hb1.get_order(BTC, "never-sent")
    assert (info.value.http_status, info.value.code) == (404, 3)


def test_duplicate_client_id_is_refused(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb1.place_order(order("dup-1"))
    with pytest.raises(InvalidOrder, match="Duplicate clientId"):
        hb1.place_order(order("dup-1"))
    assert position_qty(hb_sim) == D("0.01")


# ---- auth, signatures and nonces --------------------------------------------------------------------------


def test_wrong_api_key_gets_auth_error(hb_sim: HibachiSim) -> None:
    client = HibachiClient(hb_sim.api_url, hb_sim.data_api_url, "not-the-key", hb_sim.paper.account_id)
    with pytest.raises(AuthError) as info:
        client.account()
    assert info.value.http_status == 401


def test_wrong_signing_key_is_refused_and_nothing_trades(hb_sim: HibachiSim) -> None:
    for signer in (HmacSigner("x" * 44), make_signer("ecdsa", private_key="0x" + "22" * 32)):
        client = HibachiClient(hb_sim.api_url, hb_sim.data_api_url, hb_sim.paper.api_key, hb_sim.paper.account_id,
                               signer)  # fmt: skip
        with pytest.raises(AuthError) as info:
            client.place_order(order("wrong-key"))
        assert info.value.code == 2
    assert hb_sim.account().orders == {}


def _raw_place(sim: HibachiSim, body: dict[str, object]) -> requests.Response:
    return requests.post(
        f"{sim.api_url}/trade/order", json=body, headers={"Authorization": sim.paper.api_key}, timeout=5
    )


def _signed_body(sim: HibachiSim, client: HibachiClient, client_id: str) -> dict[str, object]:
    return {"accountId": sim.paper.account_id} | client.order_body(order(client_id), client.nonces.next())


def test_tampered_payload_is_rejected_with_code_2(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    body = _signed_body(hb_sim, hb1, "tamper-1")
    body["quantity"] = "1"  # signed for 0.01
    reply = _raw_place(hb_sim, body)
    assert reply.status_code == 400
    assert reply.json() == {"errorCode": 2, "message": "Invalid signature", "status": "failed"}
    assert hb_sim.account().orders == {}


def test_reused_nonce_is_rejected(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    body = _signed_body(hb_sim, hb1, "replay-1")
    assert _raw_place(hb_sim, body).status_code == 200
    replay = _raw_place(hb_sim, body | {"clientId": "replay-2"})  # clientId is not signed; the nonce is
    assert replay.status_code == 400
    assert replay.json()["errorCode"] == 4 and "already used" in replay.json()["message"]
    assert position_qty(hb_sim) == D("0.01")  # exactly one order traded


def test_a_client_that_repeats_a_nonce_gets_auth_error(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    fixed = hb1.nonces.next()
    hb1.nonces.next = lambda: fixed  # type: ignore[method-assign]
    assert hb1.place_order(order("same-nonce-1")).status is OrderStatus.FILLED
    with pytest.raises(AuthError, match="already used"):
        hb1.place_order(order("same-nonce-2"))
    assert position_qty(hb_sim) == D("0.01")


def test_a_nonce_outside_the_window_resyncs_the_clock_and_goes_again(hb_sim: HibachiSim) -> None:
    skewed = FakeClock(SystemClock().now() - timedelta(seconds=30))
    client = hibachi_client(hb_sim, clock=skewed)
    assert client.place_order(order("skew-1")).status is OrderStatus.FILLED  # refused, resynced, sent once more
    assert client.nonces.offset_us > 25_000_000
    assert position_qty(hb_sim) == D("0.01")  # placed once, not twice


def test_public_calls_need_no_keys(hb_sim: HibachiSim) -> None:
    client = HibachiClient(hb_sim.api_url, hb_sim.data_api_url)
    assert client.quote(BTC).mark is not None
    with pytest.raises(VenueError, match="needs hibachi.api_key"):
        client.positions()
    keyless = HibachiClient(hb_sim.api_url, hb_sim.data_api_url, hb_sim.paper.api_key, hb_sim.paper.account_id)
    assert keyless.positions() == []  # reads need only the API key
    with pytest.raises(VenueError, match="key_type"):
        keyless.place_order(order("unsigned-1"))


# ---- injected faults ---------------------------------------------------------------------------------------


def test_injected_rejection_keeps_the_venue_code(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.reject_orders(1, 4, "Invalid quantity: 0 (injected)")
    with pytest.raises(InvalidOrder) as info:
        hb1.place_order(order("inj-1"))
    assert (info.value.code, info.value.venue_message) == (4, "Invalid quantity: 0 (injected)")
    assert hb1.place_order(order("inj-2")).status is OrderStatus.FILLED  # only the next one


def test_partial_fill_is_reported(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.partial_fills(1, D("0.4"))
    result = hb1.place_order(order("part-1", qty="0.05"))
    assert result.status is OrderStatus.CANCELLED  # the remainder was cancelled
    assert (result.quantity, result.filled_quantity) == (D("0.05"), D("0.02"))
    assert result.average_price is not None and result.fee is not None and result.fee > 0
    assert position_qty(hb_sim) == D("0.02")
    assert hb1.get_order(BTC, "part-1").filled_quantity == D("0.02")


def _available_reads(sim: HibachiSim, value: str) -> None:
    """GET /trade/order answers `availableQuantity: value` for finished orders: the spec leaves it undefined."""

    def wrapper(handler: Handler) -> Handler:
        def undefined(request: Request) -> Response:
            reply = handler(request)
            if reply.status == 200 and reply.body["status"] in ("CANCELLED", "REJECTED", "FILLED"):
                return Response(200, reply.body | {"availableQuantity": value})
            return reply

        return undefined

    sim.http.wrap_route("GET", "/trade/order", wrapper)


@pytest.mark.parametrize("available", ["0", "0.05", "0.031"])
def test_a_finished_orders_fill_comes_from_order_history(
    hb1: HibachiClient, hb_sim: HibachiSim, available: str
) -> None:
    hb_sim.engine.faults.partial_fills(1, D("0.4"))
    hb1.place_order(order("hist-1", qty="0.05"))
    _available_reads(hb_sim, available)
    found = hb1.get_order(BTC, "hist-1")
    sim_order = hb_sim.engine.find_order(hb_sim.account(), client_id="hist-1")
    assert found.status is OrderStatus.CANCELLED
    assert (found.quantity, found.filled_quantity) == (D("0.05"), D("0.02"))
    assert found.average_price == sim_order.average_price
    assert found.fills is not None and sum(f.quantity for f in found.fills) == D("0.02")


def test_a_cancelled_order_that_never_filled_reads_nothing_filled(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    mark = hb1.quote(BTC).mark
    assert mark is not None
    hb1.place_order(order("hist-2", order_type=OrderType.LIMIT, price=(mark * D("0.9")).quantize(D("0.1"))))
    hb1.cancel_order(BTC, "hist-2")
    _available_reads(hb_sim, "0")  # total - available would say all of it filled
    found = hb1.get_order(BTC, "hist-2")
    assert (found.status, found.filled_quantity, found.average_price) == (OrderStatus.CANCELLED, 0, None)


def test_a_finished_order_not_yet_in_history_is_not_guessed(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.partial_fills(1, D("0.4"))
    hb1.place_order(order("hist-3", qty="0.05"))
    hb_sim.http._routes[("GET", "/trade/orders/history")] = lambda _r: Response(200, {"hasMore": False, "orders": []})
    with pytest.raises(VenueUnavailable, match="order history"):
        hb1.get_order(BTC, "hist-3")


def test_fills_are_never_assumed_from_the_order_alone(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb1.place_order(order("lag-1"))
    hb_sim.http._routes[("GET", "/trade/account/trades")] = lambda _r: Response(200, {"trades": []})
    with pytest.raises(VenueUnavailable, match="trade journal"):
        hb1.get_order(BTC, "lag-1")


def test_order_fills_are_found_across_journal_pages(
    hb1: HibachiClient, hb_sim: HibachiSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "TRADES_PAGE", 3)
    first = hb1.place_order(order("page-0"))
    for i in range(1, 8):
        hb1.place_order(order(f"page-{i}"))
    assert hb1.get_order(BTC, "page-0") == first  # its trade is on the third page
    assert [f.venue_order_id for f in hb1.fills(BTC, first.venue_order_id)] == [first.venue_order_id]


def test_server_errors_on_reads_are_retried(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.fail_requests(2, 503)
    assert hb1.account().equity == D(10000)
    assert hb_sim.engine.faults.pending()["http_errors"] == 0


def test_server_errors_beyond_the_retries_raise_unavailable(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.fail_requests(10, 500)
    with pytest.raises(VenueUnavailable) as info:
        hb1.positions()
    assert info.value.http_status == 500


def test_rate_limit_on_a_read_is_retried_after_the_hint(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.fail_requests(1, 429, retry_after=0.05)
    assert hb1.positions() == []


def test_rate_limit_on_an_order_is_raised_not_retried(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb1.exchange_info()  # cached, so the 429 meets the order itself
    hb_sim.engine.faults.fail_requests(1, 429, retry_after=0.05)
    with pytest.raises(RateLimited) as info:
        hb1.place_order(order("rl-1"))
    assert info.value.retry_after == pytest.approx(0.05)
    assert position_qty(hb_sim) == 0


def test_5xx_on_an_order_is_resolved_by_lookup_as_not_placed(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb1.exchange_info()
    hb_sim.engine.faults.fail_requests(1, 503)
    with pytest.raises(VenueUnavailable, match="was not placed") as info:
        hb1.place_order(order("5xx-1"))
    assert type(info.value) is VenueUnavailable  # known dead, not "outcome unknown"
    assert position_qty(hb_sim) == 0


def test_order_accepted_but_never_answered_is_found_not_resent(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.blackhole_orders(1)
    result = hb1.place_order(order("bh-1"))
    assert result.status is OrderStatus.FILLED
    assert result.client_id == "bh-1"
    assert position_qty(hb_sim) == D("0.01")  # exactly one order reached the venue
    assert len(hb_sim.account().orders) == 1


def test_unanswered_order_whose_lookup_fails_is_outcome_unknown(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.blackhole_orders(1)
    hb_sim.http._routes[("GET", "/trade/order")] = lambda _r: Response(503, {"message": "down", "status": "failed"})
    with pytest.raises(OrderOutcomeUnknown) as info:
        hb1.place_order(order("bh-2"))
    assert info.value.client_id == "bh-2"
    assert position_qty(hb_sim) == D("0.01")  # it did trade: only a later lookup can tell


def _lookups(sim: HibachiSim, *, forget_client_ids: bool) -> list[dict[str, str]]:
    """The query of every GET /trade/order from now on; with `forget_client_ids` a clientId lookup finds
    nothing (the spec does not promise how long the venue keeps clientIds)."""
    seen: list[dict[str, str]] = []

    def wrapper(handler: Handler) -> Handler:
        def recorded(request: Request) -> Response:
            seen.append({k: v for k, v in request.query.items() if k != "accountId"})
            if forget_client_ids and "clientId" in request.query:
                return Response(404, {"errorCode": 3, "message": "order not found", "status": "failed"})
            return handler(request)

        return recorded

    sim.http.wrap_route("GET", "/trade/order", wrapper)
    return seen


def test_a_lost_reply_is_looked_up_by_the_nonce_we_signed(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.blackhole_orders(1)
    seen = _lookups(hb_sim, forget_client_ids=True)
    result = hb1.place_order(order("bh-nonce-1"))
    placed = hb_sim.engine.find_order(hb_sim.account(), client_id="bh-nonce-1")
    assert (result.status, result.venue_order_id, result.filled_quantity) == (OrderStatus.FILLED, placed.id, D("0.01"))
    assert seen and all(query == {"nonce": str(placed.nonce)} for query in seen)
    assert position_qty(hb_sim) == D("0.01")


class _BehindClock(SystemClock):
    """The host's clock, 30 s behind the venue's (sleeps are real: a lost reply is waited out)."""

    def now(self) -> datetime:
        return super().now() - timedelta(seconds=30)


def test_a_resigned_order_is_looked_up_by_its_last_nonce(hb_sim: HibachiSim) -> None:
    client = hibachi_client(hb_sim, clock=_BehindClock())
    hb_sim.engine.faults.blackhole_orders(1)  # the first is refused for its nonce before it can be held
    seen = _lookups(hb_sim, forget_client_ids=True)
    assert client.place_order(order("bh-nonce-2")).status is OrderStatus.FILLED
    placed = hb_sim.engine.find_order(hb_sim.account(), client_id="bh-nonce-2")
    assert seen[0] == {"nonce": str(placed.nonce)}
    client.close()


def test_an_order_under_our_nonce_with_another_client_id_is_not_ours(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb1.place_order(order("mine-1"))

    def relabelled(handler: Handler) -> Handler:
        return lambda request: Response(200, handler(request).body | {"clientId": "theirs-1"})

    hb_sim.http.wrap_route("GET", "/trade/order", relabelled)
    with pytest.raises(OrderNotFound, match="theirs-1"):
        hb1.get_order(BTC, "mine-1")


def test_an_order_this_client_did_not_prepare_is_looked_up_by_client_id(hb_sim: HibachiSim) -> None:
    first, second = hibachi_client(hb_sim), hibachi_client(hb_sim)
    first.place_order(order("other-process-1"))
    seen = _lookups(hb_sim, forget_client_ids=False)
    assert second.get_order(BTC, "other-process-1").filled_quantity == D("0.01")
    assert seen == [{"clientId": "other-process-1"}]
    first.close()
    second.close()


def test_latency_is_survived(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.set_latency(0.2)
    assert hb1.place_order(order("slow-1")).status is OrderStatus.FILLED


def test_latency_beyond_the_timeout_is_unavailable(hb_sim: HibachiSim) -> None:
    client = HibachiClient(hb_sim.api_url, hb_sim.data_api_url, read_timeout_s=0.2, get_retries=1, backoff_s=0.01)
    hb_sim.engine.faults.set_latency(0.4)
    with pytest.raises(VenueUnavailable, match="ReadTimeout"):
        client.quote(BTC)


def test_malformed_reply_is_a_typed_error(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.http._routes[("GET", "/market/data/prices")] = lambda _r: Response(200, {"symbol": BTC, "markPrice": "x"})
    with pytest.raises(MalformedResponse):
        hb1.quote(BTC)


def test_maintenance_stops_orders_before_they_are_sent(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.status = "SCHEDULED_MAINTENANCE"
    with pytest.raises(VenueUnavailable, match="SCHEDULED_MAINTENANCE") as info:
        hb1.place_order(order("mnt-1"))
    assert info.value.code == "SCHEDULED_MAINTENANCE"
    assert hb_sim.account().orders == {}
    hb_sim.status = "NORMAL"
    assert hb1.place_order(order("mnt-2")).status is OrderStatus.FILLED  # re-checked, not cached as down


def test_concurrent_orders_get_unique_nonces(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(hb1.place_order(order(f"conc-{i}")))) for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 6
    assert position_qty(hb_sim) == D("0.06")


# ---- time-driven behaviour: funding and liquidation (fake clock shared by simulator and client) -----------


@pytest.fixture
def timed() -> Iterator[tuple[HibachiSim, HibachiClient, FakeClock]]:
    clock = FakeClock(SystemClock().now())
    sim = HibachiSim(clock=clock, seed=1).start()
    client = hibachi_client(sim, "ecdsa", clock=clock)
    yield sim, client, clock
    client.close()
    sim.stop()


def test_funding_is_settled_hourly(timed: tuple[HibachiSim, HibachiClient, FakeClock]) -> None:
    sim, client, clock = timed
    sim.prices.freeze("BTC")
    client.place_order(order("fund-1"))
    assert client.funding_payments(BTC) == []
    clock.advance(3600)
    (payment,) = client.funding_payments(BTC)
    mark = sim.engine.mark(BTC)
    assert payment.amount == -(D("0.01") * mark * D("0.0000125")).quantize(D("0.00000001"))  # longs pay
    clock.advance(3600)
    assert len(client.funding_payments(BTC)) == 2


def test_liquidation_closes_the_position(timed: tuple[HibachiSim, HibachiClient, FakeClock]) -> None:
    sim, client, _clock = timed
    client.place_order(order("liq-1", qty="2"))  # 130k notional on 10k: about 13x of the 15x allowed
    assert client.account().maintenance_requirement > 0
    sim.prices.jump("BTC", D(-10))
    assert client.positions() == []
    assert sim.account().liquidations == 1
    assert client.account().equity < D(10000) * D("0.2")


def test_resting_limit_fills_as_maker_when_the_price_crosses(
    timed: tuple[HibachiSim, HibachiClient, FakeClock],
) -> None:
    sim, client, _clock = timed
    sim.prices.set_price("BTC", D(65000))
    resting = client.place_order(order("maker-1", order_type=OrderType.LIMIT, price=D(64000)))
    assert resting.status is OrderStatus.NEW
    sim.prices.set_price("BTC", D(63900))
    filled = client.get_order(BTC, "maker-1")
    assert (filled.status, filled.average_price) == (OrderStatus.FILLED, D(64000))
    (fill,) = client.fills(BTC, filled.venue_order_id)
    assert fill.is_maker is True
    assert fill.fee == (D(64000) * D("0.01") * D("0.00015")).quantize(D("0.00000001"))


# ---- admin endpoint and standalone command ----------------------------------------------------------------


def test_admin_endpoint_injects_faults(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    admin = f"{hb_sim.api_url}/_sim"
    reply = requests.post(f"{admin}/fault", json={"kind": "reject", "code": 4, "count": 1}, timeout=5)
    assert reply.status_code == 200
    with pytest.raises(InvalidOrder):
        hb1.place_order(order("adm-1"))
    requests.post(f"{admin}/fault", json={"kind": "jump", "asset": "BTC", "pct": "5"}, timeout=5)
    state = requests.get(admin, timeout=5).json()
    assert state["venue"] == "hibachi"
    assert D(state["marks"][BTC]) > D(65000)


def test_standalone_command_prints_its_endpoints_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "exchanges.hibachi.sim", "--port", "0", "--seed", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        info = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert set(info) == {"api", "data_api", "ws_market", "ws_account", "api_key", "account_id", "hmac_secret",
                             "private_key", "admin"}  # fmt: skip
        assert info["ws_account"] == info["ws_market"].removesuffix("/ws/market") + "/ws/account"
        assert info["api"].startswith("http://127.0.0.1:") and info["data_api"] == info["api"]
        assert info["ws_market"].startswith("ws://127.0.0.1:") and info["ws_market"].endswith("/ws/market")
        assert info["admin"] == info["api"] + "/_sim"
        assert isinstance(info["account_id"], int)
        assert len(info["hmac_secret"]) == 44
        assert info["private_key"].startswith("0x") and len(info["private_key"]) == 66
        for key_type in ("hmac", "ecdsa"):
            signer = make_signer(key_type, hmac_secret=info["hmac_secret"], private_key=info["private_key"])
            client = HibachiClient(info["api"], info["data_api"], info["api_key"], info["account_id"], signer)
            assert client.account().equity <= D(10000)  # funded with 10,000 USDT, less fees once it traded
            assert client.place_order(order(f"cli-{key_type}")).status is OrderStatus.FILLED
    finally:
        proc.terminate()
        proc.wait(10)


def test_order_payload_matches_the_body_it_signs(hb1: HibachiClient, hb_sim: HibachiSim) -> None:
    body = hb1.order_body(order("body-1", order_type=OrderType.LIMIT, price=D("65000.5")), 1714701600000000)
    assert body["maxFeesPercent"] == "0.00045"
    assert (body["side"], body["orderType"], body["quantity"], body["price"]) == ("BID", "LIMIT", "0.01", "65000.5")
    contract = hb1.contract(BTC)
    payload = order_payload(1714701600000000, contract, D("0.01"), Side.LONG, D("65000.5"), D("0.00045"))
    assert body["signature"] == HmacSigner(hb_sim.paper.hmac_secret).sign(payload)
