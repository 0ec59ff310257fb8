"""The real Backpack client against the Backpack simulator over loopback: every method, every fault."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
import requests

from core.clock import FakeClock, SystemClock
from core.domain import Side
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.signing import BackpackKeyError
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderRequest, OrderStatus, OrderType, TimeInForce
from exchanges.errors import (
    AuthError,
    InsufficientMargin,
    InvalidOrder,
    OrderNotFound,
    RateLimited,
    VenueUnavailable,
)
from exchanges.sim.http import Handler, Request, Response

ROOT = Path(__file__).resolve().parents[2]
BTC = "BTC_USDC_PERP"


def market(client_id: str, side: Side = Side.LONG, qty: str = "0.01", **kw: object) -> OrderRequest:
    return OrderRequest(client_id, BTC, side, D(qty), **kw)  # type: ignore[arg-type]


def position_qty(sim: BackpackSim) -> D:
    pos = sim.account().positions.get(BTC)
    return pos.quantity if pos else D(0)


# ---- public data and account -----------------------------------------------------------------------------


def test_markets_quote_and_time(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    markets = {m.symbol: m for m in bp.markets()}
    assert set(markets) == {"BTC_USDC_PERP", "ETH_USDC_PERP", "SOL_USDC_PERP"}
    btc = markets[BTC]
    assert (btc.tick_size, btc.step_size, btc.min_quantity, btc.max_leverage) == (
        D("0.1"), D("0.00001"), D("0.00001"), D("50.00"),
    )  # fmt: skip
    assert bp.market(BTC) == btc
    quote = bp.quote(BTC)
    assert quote.bid is not None and quote.ask is not None and quote.mark is not None
    assert quote.bid < quote.mark < quote.ask
    assert quote.funding_rate == D("0.0001")
    assert quote.next_funding_time is not None
    assert quote.source == "rest"
    assert abs(bp.sync_time()) < 2000


def test_account_positions_and_leverage(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    account = bp.account()
    assert account.equity == D(10000)
    assert account.available == D(10000)
    assert account.maintenance_requirement == 0
    assert bp.positions() == []
    assert bp.set_leverage(BTC, D(3)) == D(3)
    assert bp.leverage_limit() == D(3)
    assert bp_sim.account().leverage_limit == D(3)
    assert bp.leverage_scope == "account"
    with pytest.raises(InvalidOrder):
        bp.set_leverage(BTC, D(80))  # above the venue's maximum


# ---- orders ----------------------------------------------------------------------------------------------


def test_market_order_fills_and_is_found_by_client_id(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    result = bp.place_order(market("1024"))
    assert result.status is OrderStatus.FILLED
    assert result.client_id == "1024"
    assert result.filled_quantity == D("0.01")
    assert result.average_price is not None
    found = bp.get_order(BTC, "1024")  # from order history: no longer resting
    assert found.venue_order_id == result.venue_order_id
    assert found.fee is not None and found.fee > 0
    (fill,) = bp.fills(BTC, result.venue_order_id)
    assert (fill.client_id, fill.quantity, fill.price) == ("1024", D("0.01"), result.average_price)
    assert fill.fee == found.fee
    (pos,) = bp.positions()
    assert (pos.symbol, pos.side, pos.quantity, pos.entry_price) == (BTC, Side.LONG, D("0.01"), result.average_price)
    account = bp.account()
    assert 0 < account.maintenance_requirement < account.initial_requirement < account.equity
    # closing reduce-only flattens
    closed = bp.place_order(market("1025", Side.SHORT, reduce_only=True))
    assert closed.status is OrderStatus.FILLED
    assert bp.positions() == []


def test_limit_order_rests_then_cancels(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    mark = bp.quote(BTC).mark
    assert mark is not None
    price = (mark * D("0.9")).quantize(D("0.1"))
    resting = bp.place_order(market("2048", order_type=OrderType.LIMIT, price=price))
    assert resting.status is OrderStatus.NEW
    assert resting.filled_quantity == 0
    assert bp.get_order(BTC, "2048").status is OrderStatus.NEW  # the resting-order path
    cancelled = bp.cancel_order(BTC, "2048")
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELLED
    assert bp.get_order(BTC, "2048").status is OrderStatus.CANCELLED  # now from history
    again = bp.cancel_order(BTC, "2048")  # nothing left to cancel: the order as it ended
    assert again is not None and again.status is OrderStatus.CANCELLED
    with pytest.raises(OrderNotFound):
        bp.cancel_order(BTC, "2049")


def test_post_only_that_would_take_expires(bp: BackpackClient) -> None:
    ask = bp.quote(BTC).ask
    assert ask is not None
    result = bp.place_order(
        market("3000", order_type=OrderType.LIMIT, price=ask + D("100"), time_in_force=TimeInForce.POST_ONLY)
    )
    assert result.status is OrderStatus.EXPIRED
    assert result.filled_quantity == 0


def test_ioc_limit_that_crosses_fills(bp: BackpackClient) -> None:
    ask = bp.quote(BTC).ask
    assert ask is not None
    result = bp.place_order(
        market("3001", order_type=OrderType.LIMIT, price=ask + D("50"), time_in_force=TimeInForce.IOC)
    )
    assert result.status is OrderStatus.FILLED


def test_reduce_only_that_would_not_reduce_is_not_filled(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    result = bp.place_order(market("4000", Side.SHORT, reduce_only=True))
    assert result.status is OrderStatus.EXPIRED
    assert result.filled_quantity == 0
    assert position_qty(bp_sim) == 0


def test_order_beyond_margin_is_refused(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    with pytest.raises(InsufficientMargin) as info:
        bp.place_order(market("5000", qty="10"))  # 650k notional on 10k collateral
    assert info.value.code == "INSUFFICIENT_MARGIN"
    assert position_qty(bp_sim) == 0


def test_bad_quantity_is_an_invalid_order(bp: BackpackClient) -> None:
    with pytest.raises(InvalidOrder) as info:
        bp.place_order(market("5001", qty="0.000001"))
    assert info.value.code == "INVALID_QUANTITY"


def test_unknown_order_lookup(bp: BackpackClient) -> None:
    with pytest.raises(OrderNotFound):
        bp.get_order(BTC, "999999")


def test_client_id_must_fit_backpack(bp: BackpackClient) -> None:
    with pytest.raises(ValueError, match="uint32"):
        bp.place_order(market(str(2**32)))


# ---- auth --------------------------------------------------------------------------------------------------


def test_wrong_key_gets_auth_error(bp_sim: BackpackSim) -> None:
    import base64

    from nacl.signing import SigningKey

    stranger = SigningKey(b"\x02" * 32)
    client = BackpackClient(
        bp_sim.rest_url,
        base64.b64encode(bytes(stranger.verify_key)).decode(),
        base64.b64encode(bytes(stranger)).decode(),
    )
    with pytest.raises(AuthError) as info:
        client.account()
    assert info.value.http_status == 401
    assert info.value.code == "UNAUTHORIZED"
    with pytest.raises(BackpackKeyError):
        BackpackClient(bp_sim.rest_url, bp_sim.api_key, base64.b64encode(bytes(stranger)).decode())


def test_tampered_signature_is_refused(bp_sim: BackpackSim) -> None:
    headers = {"X-API-Key": bp_sim.api_key, "X-Signature": "A" * 88, "X-Timestamp": "1", "X-Window": "5000"}
    response = requests.get(f"{bp_sim.rest_url}/api/v1/position", headers=headers, timeout=5)
    assert response.status_code == 401


def test_a_request_outside_the_window_resyncs_the_clock_and_goes_again(bp_sim: BackpackSim) -> None:
    skewed = FakeClock(SystemClock().now() - timedelta(seconds=30))
    client = BackpackClient(bp_sim.rest_url, bp_sim.api_key, bp_sim.api_secret, clock=skewed)
    assert client.positions() == []  # refused as expired, offset measured, re-signed and sent once more
    assert client._offset_ms > 25_000


def test_public_calls_need_no_keys(bp_sim: BackpackSim) -> None:
    client = BackpackClient(bp_sim.rest_url)
    assert client.quote(BTC).mark is not None
    with pytest.raises(Exception, match="needs backpack.api_key"):
        client.positions()


# ---- injected faults ---------------------------------------------------------------------------------------


def test_injected_rejection_keeps_the_venue_code(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    bp_sim.engine.faults.reject_orders(1, "INSUFFICIENT_MARGIN", "Not enough margin (injected)")
    with pytest.raises(InsufficientMargin) as info:
        bp.place_order(market("6000"))
    assert info.value.venue_message == "Not enough margin (injected)"
    assert bp.place_order(market("6001")).status is OrderStatus.FILLED  # only the next one


def test_partial_fill_is_reported(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    bp_sim.engine.faults.partial_fills(1, D("0.4"))
    result = bp.place_order(market("7000", qty="0.05"))
    assert result.status is OrderStatus.EXPIRED
    assert result.filled_quantity == D("0.02")
    assert result.quantity == D("0.05")
    assert position_qty(bp_sim) == D("0.02")
    assert bp.get_order(BTC, "7000").filled_quantity == D("0.02")


def test_server_errors_on_reads_are_retried(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    bp_sim.engine.faults.fail_requests(2, 503)
    assert bp.account().equity == D(10000)
    assert bp_sim.engine.faults.pending()["http_errors"] == 0


def test_server_errors_beyond_the_retries_raise_unavailable(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    bp_sim.engine.faults.fail_requests(10, 500)
    with pytest.raises(VenueUnavailable) as info:
        bp.account()
    assert info.value.code == "SERVER_ERROR"


def test_rate_limit_on_a_read_is_retried_after_the_hint(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    bp_sim.engine.faults.fail_requests(1, 429, retry_after=0.05)
    assert bp.positions() == []


def test_rate_limit_on_an_order_is_raised_not_retried(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    bp_sim.engine.faults.fail_requests(1, 429, retry_after=0.05)
    with pytest.raises(RateLimited) as info:
        bp.place_order(market("8000"))
    assert info.value.retry_after == pytest.approx(0.05)
    assert position_qty(bp_sim) == 0  # not sent twice, not sent at all


def test_5xx_on_an_order_is_resolved_by_lookup_as_not_placed(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    bp_sim.engine.faults.fail_requests(1, 503)
    with pytest.raises(VenueUnavailable, match="was not placed") as info:
        bp.place_order(market("8100"))
    assert type(info.value) is VenueUnavailable  # known dead, not "outcome unknown"
    assert position_qty(bp_sim) == 0


def test_order_accepted_but_never_answered_is_found_not_resent(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    bp_sim.engine.faults.blackhole_orders(1)
    result = bp.place_order(market("9000"))
    assert result.status is OrderStatus.FILLED
    assert result.client_id == "9000"
    assert position_qty(bp_sim) == D("0.01")  # exactly one order reached the venue
    assert len(bp_sim.account().orders) == 1


def test_latency_is_survived(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    bp_sim.engine.faults.set_latency(0.2)
    assert bp.place_order(market("9100")).status is OrderStatus.FILLED


def test_latency_beyond_the_timeout_is_unavailable(bp_sim: BackpackSim) -> None:
    client = BackpackClient(bp_sim.rest_url, read_timeout_s=0.2, get_retries=1, backoff_s=0.01)
    bp_sim.engine.faults.set_latency(0.4)
    with pytest.raises(VenueUnavailable, match="ReadTimeout"):
        client.quote(BTC)


def test_malformed_reply_is_a_typed_error(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    from exchanges.errors import MalformedResponse

    bp_sim.http._routes[("GET", "/api/v1/markPrices")] = lambda _r: Response(200, [{"symbol": BTC, "markPrice": "x"}])
    with pytest.raises(MalformedResponse):
        bp.quote(BTC)


# ---- time-driven behaviour: funding and liquidation (fake clock shared by simulator and client) -----------


@pytest.fixture
def timed() -> tuple[BackpackSim, BackpackClient, FakeClock]:
    clock = FakeClock(SystemClock().now())
    sim = BackpackSim(clock=clock, seed=1).start()
    client = BackpackClient(sim.rest_url, sim.api_key, sim.api_secret, clock=clock, requests_per_s=1000)
    yield sim, client, clock
    client.close()
    sim.stop()


def test_funding_is_paid_on_the_venue_schedule(timed: tuple[BackpackSim, BackpackClient, FakeClock]) -> None:
    sim, client, clock = timed
    sim.prices.freeze("BTC")
    client.place_order(market("100"))
    assert client.funding_payments(BTC) == []
    clock.advance(8 * 3600)
    (payment,) = client.funding_payments(BTC)
    assert payment.amount < 0  # positive rate: the long pays
    assert payment.rate == D("0.0001")
    mark = sim.engine.mark(BTC)
    assert payment.amount == -(D("0.01") * mark * D("0.0001")).quantize(D("0.00000001"))


def test_liquidation_closes_the_position(timed: tuple[BackpackSim, BackpackClient, FakeClock]) -> None:
    sim, client, _clock = timed
    client.set_leverage(BTC, D(20))
    client.place_order(market("200", qty="2.5"))  # 162k notional on 10k: about 16x
    (pos,) = client.positions()
    assert pos.liquidation_price is not None and pos.liquidation_price < pos.entry_price
    sim.prices.jump("BTC", D(-10))
    assert client.positions() == []
    assert sim.account().liquidations == 1
    assert client.account().equity < D(10000) * D("0.2")


def _count_position_queries(sim: BackpackSim) -> list[str | None]:
    """The `symbol` parameter of every position query the simulator answers from now on."""
    seen: list[str | None] = []

    def wrapper(handler: Handler) -> Handler:
        def counted(request: Request) -> Response:
            seen.append(request.query.get("symbol"))
            return handler(request)

        return counted

    sim.http.wrap_route("GET", "/api/v1/position", wrapper)
    return seen


def test_liquidation_price_comes_from_the_one_symbol_query(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    assert not bp_sim.liquidation_in_list  # the simulator answers like the venue: "0" in the all-symbol list
    seen = _count_position_queries(bp_sim)
    assert bp.positions() == []
    assert seen == [None]  # nothing open: the list alone, no per-symbol query
    bp.set_leverage(BTC, D(20))
    bp.place_order(market("210", qty="2.5"))
    bp.place_order(OrderRequest("211", "ETH_USDC_PERP", Side.SHORT, D(1)))
    seen.clear()
    positions = {p.symbol: p for p in bp.positions()}
    assert sorted(seen, key=str) == sorted([None, BTC, "ETH_USDC_PERP"], key=str)  # one per open symbol
    btc, eth = positions[BTC], positions["ETH_USDC_PERP"]
    assert btc.liquidation_price == bp_sim.engine.liquidation_price(bp_sim.account(), BTC)
    assert btc.liquidation_price is not None and btc.liquidation_price < btc.entry_price
    assert eth.side is Side.SHORT and eth.liquidation_price is not None and eth.liquidation_price > eth.entry_price


def test_a_zero_liquidation_estimate_is_unknown_not_a_price(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    bp.place_order(market("220"))

    def no_estimate(handler: Handler) -> Handler:
        def zeroed(request: Request) -> Response:
            reply = handler(request)
            return Response(reply.status, [item | {"estLiquidationPrice": "0"} for item in reply.body])

        return zeroed

    bp_sim.http.wrap_route("GET", "/api/v1/position", no_estimate)
    (pos,) = bp.positions()
    assert pos.quantity == D("0.01") and pos.liquidation_price is None


# ---- admin endpoint and standalone command ----------------------------------------------------------------


def test_admin_endpoint_injects_faults(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    admin = f"{bp_sim.rest_url}/_sim"
    reply = requests.post(f"{admin}/fault", json={"kind": "reject", "code": "INVALID_PRICE", "count": 1}, timeout=5)
    assert reply.status_code == 200
    with pytest.raises(InvalidOrder):
        bp.place_order(market("300"))
    requests.post(f"{admin}/fault", json={"kind": "jump", "asset": "BTC", "pct": "5"}, timeout=5)
    state = requests.get(admin, timeout=5).json()
    assert D(state["marks"][BTC]) > D(65000)
    bad = requests.post(f"{admin}/fault", json={"kind": "nope"}, timeout=5)
    assert bad.status_code == 400
    assert "unknown fault kind" in bad.json()["error"]


def test_standalone_command_prints_its_endpoints_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "exchanges.backpack.sim", "--port", "0", "--seed", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        info = json.loads(line)
        assert set(info) == {"rest", "ws", "api_key", "api_secret", "admin"}
        assert info["rest"].startswith("http://127.0.0.1:")
        assert info["ws"].startswith("ws://127.0.0.1:")
        assert info["admin"] == info["rest"] + "/_sim"
        client = BackpackClient(info["rest"], info["api_key"], info["api_secret"])
        assert client.account().equity == D(10000)
        assert client.place_order(market("1")).status is OrderStatus.FILLED
    finally:
        proc.terminate()
        proc.wait(10)


def test_concurrent_orders_from_two_threads(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(bp.place_order(market(str(500 + i))))) for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 4
    assert position_qty(bp_sim) == D("0.04")


def test_resting_limit_fills_as_maker_when_the_price_crosses(
    timed: tuple[BackpackSim, BackpackClient, FakeClock],
) -> None:
    sim, client, _clock = timed
    sim.prices.set_price("BTC", D(65000))
    resting = client.place_order(market("400", order_type=OrderType.LIMIT, price=D("64000")))
    assert resting.status is OrderStatus.NEW
    sim.prices.set_price("BTC", D(63900))
    filled = client.get_order(BTC, "400")
    assert filled.status is OrderStatus.FILLED
    assert filled.average_price == D("64000")
    (fill,) = client.fills(BTC, filled.venue_order_id)
    assert fill.is_maker is True
    assert fill.fee == (D("64000") * D("0.01") * D("0.0002")).quantize(D("0.00000001"))
