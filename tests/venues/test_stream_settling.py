"""Both clients settle a placed order from the account stream against the real simulators: no REST fill or
read-back request, the same result REST gives; and REST again when the stream is silent, dropped or not yet
back."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal as D
from urllib.parse import urlsplit

import pytest

from core.clock import SystemClock
from core.config import load_settings
from core.domain import Side
from exchanges.account_stream import StreamTimings
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.backpack.venue import SPEC as BP_SPEC
from exchanges.base import OrderRequest, OrderResult, OrderStatus, PerpExchange
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.sim import HibachiSim
from exchanges.hibachi.venue import SPEC as HB_SPEC
from tests.helpers import wait_until
from tests.venues.conftest import hibachi_client

# Slow to reconnect, so that a test can act while a dropped stream is still down.
TIMINGS = StreamTimings(keepalive_s=1.0, quiet_after_s=10.0, reconnect_min_s=1.0, reconnect_max_s=1.0)
BP_SYMBOL, HB_SYMBOL = "BTC_USDC_PERP", "BTC/USDT-P"


def backpack(sim: BackpackSim, **options: object) -> BackpackClient:
    settings: dict[str, object] = {
        "clock": SystemClock(), "read_timeout_s": 2.0, "requests_per_s": 500, "backoff_s": 0.01,
        "account_ws_url": sim.ws_url, "stream_wait_s": 5.0, "stream_timings": TIMINGS,
    }  # fmt: skip
    settings.update(options)
    return BackpackClient(sim.rest_url, sim.api_key, sim.api_secret, **settings)  # type: ignore[arg-type]


@pytest.fixture
def bp(bp_sim: BackpackSim) -> Iterator[BackpackClient]:
    client = backpack(bp_sim)
    assert client.account_stream is not None
    wait_until(client.account_stream.healthy, what="backpack stream subscribed")
    yield client
    client.close()


@pytest.fixture
def hb_sim() -> Iterator[HibachiSim]:
    sim = HibachiSim(seed=7).start()
    yield sim
    sim.stop()


@pytest.fixture
def hb(hb_sim: HibachiSim) -> Iterator[HibachiClient]:
    client = hibachi_client(hb_sim, account_ws_url=hb_sim.ws_account_url(), stream_wait_s=5.0,
                            stream_timings=TIMINGS, nonce_window_s=15.0)  # fmt: skip
    assert client.account_stream is not None
    wait_until(client.account_stream.healthy, what="hibachi stream started")
    yield client
    client.close()


_ids = iter(range(1000, 100000))


def place(client: PerpExchange, symbol: str, quantity: str, side: Side = Side.LONG) -> tuple[OrderResult, list[str]]:
    """Place a market order; its result and the paths of the requests it took from the order on."""
    prepared = client.prepare_order(OrderRequest(str(next(_ids)), symbol, side, D(quantity)))
    before = len(prepared.marks)
    result = client.send_order(prepared)
    return result, [f"{m.method} {urlsplit(m.path).path}" for m in prepared.marks[before:]]


# ---- Backpack ---------------------------------------------------------------------------------------------


def test_backpack_fills_come_from_the_stream_and_match_rest(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    result, requests = place(bp, BP_SYMBOL, "0.01")
    assert requests == ["POST /api/v1/order"]  # no fill history read
    assert bp.stream_settled == 1 and result.status is OrderStatus.FILLED
    assert result.fills is not None and result.fills == tuple(bp.fills(BP_SYMBOL, result.venue_order_id))
    assert result.fee == sum((f.fee for f in result.fills), D(0)) and result.fee > 0
    # What the REST path makes of the same reply.
    rest = backpack(bp_sim, account_ws_url=None)
    try:
        assert rest._with_fills(dataclasses.replace(result, fee=None, fills=None)) == result
    finally:
        rest.close()


def test_backpack_two_fills_and_reordered_events_still_settle_from_the_stream(
    bp: BackpackClient, bp_sim: BackpackSim
) -> None:
    bp_sim.engine.faults.reorder_private(3)
    result, requests = place(bp, "ETH_USDC_PERP", "6", Side.SHORT)  # walks two book levels
    assert requests == ["POST /api/v1/order"]
    assert result.fills is not None and len(result.fills) == 2
    assert result.fills == tuple(bp.fills("ETH_USDC_PERP", result.venue_order_id))


def test_backpack_a_silent_stream_falls_back_to_rest(bp_sim: BackpackSim) -> None:
    client = backpack(bp_sim, stream_wait_s=0.2)
    try:
        assert client.account_stream is not None
        wait_until(client.account_stream.healthy, what="subscribed")
        bp_sim.engine.faults.silence_private(True)
        result, requests = place(client, BP_SYMBOL, "0.01")
        assert requests == ["POST /api/v1/order", "GET /wapi/v1/history/fills"]
        assert client.stream_settled == 0 and result.fills and result.fee
    finally:
        client.close()


def test_backpack_a_dropped_stream_goes_to_rest_at_once_then_comes_back(bp_sim: BackpackSim) -> None:
    # A long wait for the stream: a loaded machine delivers its event late, and the wait ends when it comes (a
    # dropped stream is not waited for at all, which is what the first order shows).
    bp = backpack(bp_sim, stream_wait_s=5)
    try:
        stream = bp.account_stream
        assert stream is not None
        wait_until(stream.healthy, what="subscribed")
        bp_sim.ws.drop_private()
        wait_until(lambda: not stream.healthy(), what="the drop noticed")
        result, requests = place(bp, BP_SYMBOL, "0.01")
        assert requests == ["POST /api/v1/order", "GET /wapi/v1/history/fills"] and bp.stream_settled == 0
        assert result.fills
        wait_until(stream.healthy, what="resubscribed")
        _, requests = place(bp, BP_SYMBOL, "0.01", Side.SHORT)
        assert requests == ["POST /api/v1/order"] and bp.stream_settled == 1
    finally:
        bp.close()


# ---- Hibachi ----------------------------------------------------------------------------------------------

HB_READS = {"GET /trade/order", "GET /trade/account/trades"}


def test_hibachi_outcome_comes_from_the_stream_and_matches_rest(hb: HibachiClient) -> None:
    result, requests = place(hb, HB_SYMBOL, "0.001")
    assert requests == ["POST /trade/order"]  # no read-back, no trade journal
    assert hb.stream_settled == 1 and result.status is OrderStatus.FILLED
    assert result == hb.get_order(HB_SYMBOL, result.client_id or "")


def test_hibachi_reordered_events_still_settle_from_the_stream(hb: HibachiClient, hb_sim: HibachiSim) -> None:
    hb_sim.engine.faults.reorder_private(1)
    result, requests = place(hb, HB_SYMBOL, "0.001", Side.SHORT)
    assert requests == ["POST /trade/order"]
    assert result == hb.get_order(HB_SYMBOL, result.client_id or "")


def test_hibachi_a_silent_stream_falls_back_to_rest(hb_sim: HibachiSim) -> None:
    client = hibachi_client(hb_sim, account_ws_url=hb_sim.ws_account_url(), stream_wait_s=0.2,
                            stream_timings=TIMINGS, nonce_window_s=15.0)  # fmt: skip
    try:
        assert client.account_stream is not None
        wait_until(client.account_stream.healthy, what="stream started")
        hb_sim.engine.faults.silence_private(True)
        result, requests = place(client, HB_SYMBOL, "0.001")
        assert set(requests) >= HB_READS and client.stream_settled == 0
        assert result.status is OrderStatus.FILLED and result.fills
    finally:
        client.close()


def test_hibachi_a_dropped_stream_goes_to_rest_at_once_then_comes_back(hb: HibachiClient, hb_sim: HibachiSim) -> None:
    stream = hb.account_stream
    assert stream is not None
    hb_sim.engine.faults.drop_account_streams()
    wait_until(lambda: not stream.healthy(), what="the drop noticed")
    result, requests = place(hb, HB_SYMBOL, "0.001")
    assert set(requests) >= HB_READS and hb.stream_settled == 0 and result.fills
    wait_until(stream.healthy, what="a new stream")
    _, requests = place(hb, HB_SYMBOL, "0.001", Side.SHORT)
    assert requests == ["POST /trade/order"] and hb.stream_settled == 1


# ---- how the engine builds them ---------------------------------------------------------------------------


def test_paper_clients_stream_from_their_simulators(bp_sim: BackpackSim, hb_sim: HibachiSim) -> None:
    settings = load_settings(None, {})
    clients = [
        BP_SPEC.connect(settings, SystemClock(), [BP_SYMBOL], bp_sim)()[0],
        HB_SPEC.connect(settings, SystemClock(), [HB_SYMBOL], hb_sim)()[0],
    ]
    try:
        urls = [c.account_stream.dialect.url for c in clients if c.account_stream is not None]  # type: ignore[attr-defined]
        assert urls == [bp_sim.ws_url, hb_sim.ws_account_url()]
        for client in clients:
            wait_until(client.account_stream.healthy, what=f"{client.venue} stream")  # type: ignore[attr-defined]
    finally:
        for client in clients:
            client.close()
    assert all(not c.account_stream.healthy() for c in clients)  # type: ignore[attr-defined]


def test_an_empty_url_builds_clients_without_a_stream(bp_sim: BackpackSim, hb_sim: HibachiSim) -> None:
    settings = load_settings(None, {"backpack": {"account_ws_url": ""}, "hibachi": {"account_ws_url": ""}})
    for spec, sim in ((BP_SPEC, bp_sim), (HB_SPEC, hb_sim)):
        client = spec.connect(settings, SystemClock(), [], sim)()[0]
        try:
            assert client.account_stream is None  # type: ignore[attr-defined]
        finally:
            client.close()
