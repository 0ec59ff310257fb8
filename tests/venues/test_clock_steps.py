"""A wall-clock step under a running client: the venue's window/nonce refusal is answered by one resync and
one re-signed re-send, for both venues against their simulators. Venue and client each have their own
FakeClock, so the step is exact and nothing depends on real time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from core.clock import FakeClock
from core.domain import Side
from exchanges.backpack import client as backpack_client
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderRequest, OrderStatus, WireMark
from exchanges.errors import AuthError, InvalidOrder, RateLimited, VenueError, VenueUnavailable
from exchanges.hibachi import client as hibachi_client_module
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.sim import HibachiSim
from exchanges.http import PreparedRequest
from tests.venues.conftest import hibachi_client

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
BP_BTC = "BTC_USDC_PERP"
HB_BTC = "BTC/USDT-P"


@pytest.fixture
def venue_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def local_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def bp_stepped(venue_clock: FakeClock, local_clock: FakeClock) -> Iterator[tuple[BackpackSim, BackpackClient]]:
    sim = BackpackSim(clock=venue_clock, seed=7).start()
    client = BackpackClient(sim.rest_url, sim.api_key, sim.api_secret, clock=local_clock, requests_per_s=500)
    yield sim, client
    client.close()
    sim.stop()


@pytest.fixture
def hb_stepped(venue_clock: FakeClock, local_clock: FakeClock) -> Iterator[tuple[HibachiSim, HibachiClient]]:
    sim = HibachiSim(clock=venue_clock, seed=7).start()
    client = hibachi_client(sim, clock=local_clock, nonce_window_s=15.0)
    yield sim, client
    client.close()
    sim.stop()


Recorder = Callable[[BackpackClient | HibachiClient], list[WireMark]]


@pytest.fixture
def record() -> Iterator[Recorder]:
    """Stamps every request a client sends from the test's thread, until the test ends."""
    with ExitStack() as stack:
        yield lambda client: stack.enter_context(client.transport.recording([]))


def _paths(marks: list[WireMark]) -> list[str]:
    return [m.method + " " + m.path.split("://", 1)[1].split("/", 1)[1] for m in marks]


# ---- Backpack --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step_s", [60, -60])
def test_backpack_signed_read_after_a_wall_step_succeeds_after_one_resync(
    bp_stepped: tuple[BackpackSim, BackpackClient], local_clock: FakeClock, step_s: int, record: Recorder
) -> None:
    _, client = bp_stepped
    assert client.sync_time() == 0
    marks = record(client)
    local_clock.step_wall(step_s)
    assert client.positions() == []
    assert _paths(marks) == ["GET api/v1/position", "GET api/v1/time", "GET api/v1/position"]
    assert client.positions() == []  # the corrected offset holds: no further refusal, no further resync
    assert len(marks) == 4


@pytest.mark.parametrize("step_s", [60, -60])
def test_backpack_order_after_a_wall_step_is_resent_once_and_placed_once(
    bp_stepped: tuple[BackpackSim, BackpackClient], local_clock: FakeClock, step_s: int, record: Recorder
) -> None:
    sim, client = bp_stepped
    client.sync_time()
    marks = record(client)
    local_clock.step_wall(step_s)
    result = client.place_order(OrderRequest("4242", BP_BTC, Side.LONG, D("0.01")))
    assert result.status is OrderStatus.FILLED
    assert _paths(marks)[:3] == ["POST api/v1/order", "GET api/v1/time", "POST api/v1/order"]
    assert sim.account().positions[BP_BTC].quantity == D("0.01")  # one order, same clientId


def test_backpack_refusal_that_survives_the_resync_is_not_sent_a_third_time(
    bp_stepped: tuple[BackpackSim, BackpackClient],
    record: Recorder,
) -> None:
    _, client = bp_stepped
    client._now_ms = lambda: 1_000_000  # type: ignore[method-assign]  # a signer stuck in 1970
    marks = record(client)
    with pytest.raises(AuthError, match="expired"):
        client.positions()
    assert _paths(marks) == ["GET api/v1/position", "GET api/v1/time", "GET api/v1/position"]


def test_backpack_other_auth_refusals_are_neither_resynced_nor_resent(bp_sim: BackpackSim, record: Recorder) -> None:
    stranger_secret, stranger_key = bp_sim.add_account("stranger", D(0))
    client = BackpackClient(bp_sim.rest_url, stranger_key, stranger_secret, requests_per_s=500)
    bp_sim._keys.pop(stranger_key)  # the venue no longer knows the key
    marks = record(client)
    with pytest.raises(AuthError, match="Unknown API key"):
        client.positions()
    assert _paths(marks) == ["GET api/v1/position"]
    client.close()


def test_backpack_clock_refusal_classification() -> None:
    is_clock_refusal = backpack_client.is_clock_refusal
    expired = AuthError("backpack", "Request has expired", code="INVALID_CLIENT_REQUEST", http_status=401)
    assert is_clock_refusal(expired)
    assert is_clock_refusal(AuthError("backpack", "Request has expired", http_status=401))  # plain-text body
    assert is_clock_refusal(
        InvalidOrder("backpack", "Invalid timestamp", code="INVALID_CLIENT_REQUEST", http_status=400)
    )
    assert not is_clock_refusal(AuthError("backpack", "Invalid signature", code="INVALID_SIGNATURE", http_status=401))
    assert not is_clock_refusal(InvalidOrder("backpack", "Price is too far", code="INVALID_PRICE", http_status=400))
    assert not is_clock_refusal(VenueUnavailable("backpack", "GET /x: ReadTimeout"))  # a lost reply is never this
    assert not is_clock_refusal(RateLimited("backpack", "expired", http_status=429))


# ---- Hibachi ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step_s", [60, -60])
def test_hibachi_order_after_a_wall_step_is_resent_once_and_placed_once(
    hb_stepped: tuple[HibachiSim, HibachiClient], local_clock: FakeClock, step_s: int, record: Recorder
) -> None:
    sim, client = hb_stepped
    assert client.sync_time() == 0
    client.exchange_info()
    marks = record(client)
    local_clock.step_wall(step_s)
    result = client.place_order(OrderRequest("step-1", HB_BTC, Side.LONG, D("0.01")))
    assert result.status is OrderStatus.FILLED
    assert _paths(marks)[:3] == ["POST trade/order", "GET exchange/utc-timestamp", "POST trade/order"]
    pos = sim.account().positions.get(HB_BTC)
    assert pos is not None and pos.quantity == D("0.01")  # one order, same clientId
    # The next order needs no resync: the offset, and the nonce floor, are back on the venue's clock.
    marks.clear()
    assert client.place_order(OrderRequest("step-2", HB_BTC, Side.SHORT, D("0.01"))).status is OrderStatus.FILLED
    assert [p for p in _paths(marks) if p.startswith("POST")] == ["POST trade/order"]
    assert "GET exchange/utc-timestamp" not in _paths(marks)


def test_hibachi_step_forward_after_orders_recovers_despite_the_nonce_floor(
    hb_stepped: tuple[HibachiSim, HibachiClient], local_clock: FakeClock, venue_clock: FakeClock
) -> None:
    sim, client = hb_stepped
    client.sync_time()
    assert client.place_order(OrderRequest("before-1", HB_BTC, Side.LONG, D("0.01"))).status is OrderStatus.FILLED
    local_clock.step_wall(60)
    # Refused, resynced, re-sent: the floor left a minute ahead by the refused nonce comes back.
    assert client.place_order(OrderRequest("after-1", HB_BTC, Side.LONG, D("0.01"))).status is OrderStatus.FILLED
    venue_clock.advance(1)
    local_clock.advance(1)
    assert client.place_order(OrderRequest("after-2", HB_BTC, Side.LONG, D("0.01"))).status is OrderStatus.FILLED
    pos = sim.account().positions.get(HB_BTC)
    assert pos is not None and pos.quantity == D("0.03")


def test_hibachi_nonce_refusal_classification() -> None:
    is_nonce_refusal = hibachi_client_module.is_nonce_refusal
    window = AuthError("hibachi", "Invalid nonce 1: outside the allowed window of server time", code=4, http_status=400)
    assert is_nonce_refusal(window)
    assert is_nonce_refusal(AuthError("hibachi", "Invalid nonce 1: already used", code=4, http_status=400))
    assert not is_nonce_refusal(AuthError("hibachi", "Invalid signature", code=2, http_status=400))
    assert not is_nonce_refusal(InvalidOrder("hibachi", "quantity too small", code=4, http_status=400))
    assert not is_nonce_refusal(VenueUnavailable("hibachi", "POST /trade/order: ReadTimeout"))
    assert not is_nonce_refusal(VenueError("hibachi", "nonce", http_status=503))


# ---- periodic resync ---------------------------------------------------------------------------------------


def test_backpack_resyncs_every_period_on_monotonic_time(
    bp_stepped: tuple[BackpackSim, BackpackClient], local_clock: FakeClock, venue_clock: FakeClock, record: Recorder
) -> None:
    _, client = bp_stepped
    client.sync_time()
    marks = record(client)
    local_clock.step_wall(3600)  # a wall step alone does not make a resync due (it makes a refusal)...
    local_clock.step_wall(-3600)
    local_clock.advance(299)
    venue_clock.advance(299)
    local_clock.step_wall(2)  # ...but drift inside the window does not cause one either: only the period
    client.positions()
    assert _paths(marks) == ["GET api/v1/position"]
    local_clock.advance(1)
    venue_clock.advance(1)
    client.positions()
    assert _paths(marks)[1:] == ["GET api/v1/time", "GET api/v1/position"]
    assert client._offset_ms == -2000  # the drift was caught before it caused a refusal
    # An order does not pay a round trip for a due resync (a read will do it) unless none did for two periods.
    marks.clear()
    local_clock.advance(300)
    venue_clock.advance(300)
    client.place_order(OrderRequest("1", BP_BTC, Side.LONG, D("0.01")))
    assert _paths(marks)[:3] == ["POST api/v1/order", "GET api/v1/time", "GET wapi/v1/history/fills"]
    marks.clear()  # the read of the order's fills measured again: two periods on from that
    local_clock.advance(600)
    venue_clock.advance(600)
    client.place_order(OrderRequest("2", BP_BTC, Side.SHORT, D("0.01")))
    assert _paths(marks)[:2] == ["GET api/v1/time", "POST api/v1/order"]


def test_backpack_failing_periodic_resync_neither_blocks_nor_repeats(
    bp_stepped: tuple[BackpackSim, BackpackClient], local_clock: FakeClock, venue_clock: FakeClock
) -> None:
    _, client = bp_stepped
    client.sync_time()
    calls: list[bool] = []

    def down(*, retry: bool) -> int:
        calls.append(retry)
        raise VenueUnavailable("backpack", "GET /api/v1/time: ConnectTimeout")

    client._server_time_ms = down  # type: ignore[method-assign]
    local_clock.advance(300)
    venue_clock.advance(300)
    assert client.positions() == []
    assert client.positions() == []
    assert calls == [False]  # one attempt, no GET retries in front of the request, not again until next period


def test_hibachi_resyncs_every_period_on_monotonic_time(
    hb_stepped: tuple[HibachiSim, HibachiClient], local_clock: FakeClock, venue_clock: FakeClock, record: Recorder
) -> None:
    _, client = hb_stepped
    client.sync_time()
    marks = record(client)
    local_clock.advance(299)
    venue_clock.advance(299)
    local_clock.step_wall(-2)
    client.positions()
    assert _paths(marks) == ["GET trade/account/info"]
    local_clock.advance(1)
    venue_clock.advance(1)
    client.positions()
    assert _paths(marks)[1:] == ["GET exchange/utc-timestamp", "GET trade/account/info"]
    assert client.nonces.offset_us == 2_000_000


# ---- a lost reply's wait, counted on monotonic time ----------------------------------------------------------


def _capture_wait(monkeypatch: pytest.MonkeyPatch, module: object) -> list[float]:
    waits: list[float] = []

    def resolve(venue: str, request: OrderRequest, cause: VenueError, wait_s: float, *_: object) -> None:
        waits.append(wait_s)
        raise cause

    monkeypatch.setattr(module, "resolve_lost_reply", resolve)
    return waits


def test_backpack_lost_reply_waits_out_the_window_despite_a_wall_step(
    bp_stepped: tuple[BackpackSim, BackpackClient], local_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = bp_stepped
    waits = _capture_wait(monkeypatch, backpack_client)

    def lost(request: PreparedRequest) -> None:
        assert request.method == "POST"  # signed when prepared, now sent...
        local_clock.step_wall(60)  # ...then the wall clock jumps while the reply is lost
        raise VenueUnavailable("backpack", "POST /api/v1/order: ReadTimeout")

    client.transport.send = lost  # type: ignore[method-assign]
    with pytest.raises(VenueUnavailable):
        client.place_order(OrderRequest("9", BP_BTC, Side.LONG, D("0.01")))
    assert waits == [pytest.approx(5.0)]  # the whole window: the request may still land


def test_hibachi_lost_reply_waits_out_the_window_despite_a_wall_step(
    hb_stepped: tuple[HibachiSim, HibachiClient], local_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = hb_stepped
    client.sync_time()
    client.exchange_info()
    waits = _capture_wait(monkeypatch, hibachi_client_module)

    def lost(*_: object, **__: object) -> None:
        local_clock.step_wall(60)
        raise VenueUnavailable("hibachi", "POST /trade/order: ReadTimeout")

    client.transport.send = lost  # type: ignore[method-assign]
    with pytest.raises(VenueUnavailable):
        client.place_order(OrderRequest("lost-1", HB_BTC, Side.LONG, D("0.01")))
    assert waits == [pytest.approx(15.0)]
