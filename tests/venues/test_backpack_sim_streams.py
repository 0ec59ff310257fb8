"""The Backpack simulator's signed account streams and depth: signatures, snapshots, fills, ownership, faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest
import requests
from websockets.exceptions import ConnectionClosed

from core.domain import Side
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderType
from tests.venues.backpack_ws import StreamClient, data_of, subscribe_signature

BTC, ETH = "BTC_USDC_PERP", "ETH_USDC_PERP"
ORDERS, POSITIONS = "account.orderUpdate", "account.positionUpdate"


@pytest.fixture
def sim() -> Iterator[BackpackSim]:
    s = BackpackSim(seed=4, publish_interval_s=0.02).start()
    yield s
    s.stop()


def _market(sim: BackpackSim, symbol: str, side: Side, quantity: str, client_id: str | None = None) -> None:
    sim.engine.place(sim.account(), symbol=symbol, side=side, order_type=OrderType.MARKET, quantity=D(quantity),
                     client_id=client_id)  # fmt: skip


def _signed(sim: BackpackSim, client: StreamClient, streams: list[str]) -> None:
    client.subscribe(streams, subscribe_signature(sim.api_key, sim.api_secret))


def _fault(sim: BackpackSim, spec: dict[str, Any]) -> dict[str, Any]:
    reply = requests.post(f"{sim.rest_url}/_sim/fault", json=spec, timeout=5)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_a_bad_signature_is_refused_and_gets_no_events(sim: BackpackSim) -> None:
    good = subscribe_signature(sim.api_key, sim.api_secret)
    other_secret, _ = sim.add_account("other", D(1000))
    forged = [sim.api_key, subscribe_signature(sim.api_key, other_secret)[1], good[2], good[3]]
    stale = subscribe_signature(sim.api_key, sim.api_secret, ts_ms=int(time.time() * 1000) - 60_000)
    for signature in (forged, stale, [sim.api_key, good[1]], None):
        with StreamClient(sim) as client:
            client.subscribe([ORDERS], signature)  # type: ignore[arg-type]
            assert client.recv() == {"id": None, "error": {"code": 4006, "message": "Invalid signature"}}
            _market(sim, BTC, Side.LONG, "0.01")
            assert client.until_barrier() == []


def test_unknown_streams_and_bad_frames_get_the_documented_errors(sim: BackpackSim) -> None:
    with StreamClient(sim) as client:
        client.subscribe(["bookTicker.NOPE_USDC_PERP"])
        assert client.recv() == {"id": None, "error": {"code": 4006, "message": "Invalid stream"}}
        _signed(sim, client, ["account.orderUpdate.NOPE", "account.nothing"])
        assert client.recv()["error"]["code"] == 4006
        client.conn.send("not json")
        assert client.recv()["error"]["code"] == 4000
        client.conn.send('{"method": "PUBLISH", "params": []}')
        assert client.recv() == {"id": None, "error": {"code": 4000, "message": "Invalid method"}}


def test_current_positions_are_sent_on_subscribe_without_an_event_type(sim: BackpackSim) -> None:
    _market(sim, BTC, Side.LONG, "0.02")
    _market(sim, ETH, Side.SHORT, "0.5")
    with StreamClient(sim) as both, StreamClient(sim) as eth_only:
        _signed(sim, both, [POSITIONS])
        _signed(sim, eth_only, [f"{POSITIONS}.{ETH}"])
        snapshot = {d["s"]: d for d in data_of(both.until_barrier(), POSITIONS)}
        assert set(snapshot) == {BTC, ETH}
        assert all("e" not in d for d in snapshot.values())
        assert (snapshot[BTC]["q"], snapshot[ETH]["q"]) == (D("0.02"), D("-0.5"))  # JSON numbers, parsed exactly
        assert [d["s"] for d in data_of(eth_only.until_barrier(), f"{POSITIONS}.{ETH}")] == [ETH]


def test_fills_carry_per_fill_and_cumulative_quantities_for_full_and_partial_fills(sim: BackpackSim) -> None:
    with StreamClient(sim) as client:
        _signed(sim, client, [ORDERS, POSITIONS])
        client.until_barrier()
        _market(sim, ETH, Side.SHORT, "6", client_id="9")  # the book holds 5 a level: two fills
        frames = client.until_barrier()
        events = data_of(frames, ORDERS)
        assert [(e["e"], e["X"], e.get("l"), e["z"]) for e in events] == [
            ("orderAccepted", "New", None, "0"),
            ("orderFill", "PartiallyFilled", "5", "5"),
            ("orderFill", "Filled", "1", "6"),
        ]
        fills = sim.account().fills[-2:]
        assert [(e["t"], D(e["L"]), D(e["n"]), e["m"]) for e in events[1:]] == [
            (f.trade_id, f.price, f.fee, False) for f in fills
        ]
        assert D(events[-1]["Z"]) == sum(f.price * f.quantity for f in fills)
        assert {e["c"] for e in events} == {9} and {e["i"] for e in events} == {list(sim.account().orders)[-1]}
        [opened] = data_of(frames, POSITIONS)
        assert (opened["e"], opened["q"]) == ("positionOpened", D(-6))

        _fault(sim, {"kind": "partial_fill", "fraction": "0.5"})
        _market(sim, BTC, Side.LONG, "0.02")
        events = data_of(client.until_barrier(), ORDERS)
        assert [(e["e"], e["X"], D(e.get("l", "0")), D(e["z"]), e.get("R")) for e in events] == [
            ("orderAccepted", "New", 0, 0, None),
            ("orderFill", "PartiallyFilled", D("0.01"), D("0.01"), None),
            ("orderExpired", "Expired", 0, D("0.01"), "ImmediateOrCancel"),
        ]


def test_a_resting_order_fills_as_maker_and_a_cancel_is_told(sim: BackpackSim) -> None:
    account = sim.account()
    with StreamClient(sim) as client:
        _signed(sim, client, [f"{ORDERS}.{BTC}"])
        client.until_barrier()
        mark = sim.engine.mark(BTC)
        low = sim.engine.place(account, symbol=BTC, side=Side.LONG, order_type=OrderType.LIMIT, quantity=D("0.01"),
                               price=(mark * D("0.5")).quantize(D("0.1")))  # fmt: skip
        sim.engine.cancel(account, order_id=low.id)
        near = sim.engine.place(account, symbol=BTC, side=Side.SHORT, order_type=OrderType.LIMIT,
                                quantity=D("0.01"), price=mark + 5)  # fmt: skip
        sim.prices.jump("BTC", D("0.1"))  # percent: the bid passes the ask at mark + 5
        with sim.engine.lock:
            sim.engine.tick()
        events = data_of(client.until_barrier(), f"{ORDERS}.{BTC}")
        assert [(e["e"], e["i"], e["X"]) for e in events] == [
            ("orderAccepted", low.id, "New"), ("orderCancelled", low.id, "Cancelled"),
            ("orderAccepted", near.id, "New"), ("orderFill", near.id, "Filled"),
        ]  # fmt: skip
        assert events[-1]["m"] is True and events[-1]["L"] == str(mark + 5)


def test_events_go_only_to_the_owner_and_leave_before_the_rest_reply(sim: BackpackSim) -> None:
    other_secret, other_key = sim.add_account("other", D(10000))
    with StreamClient(sim) as mine, StreamClient(sim) as theirs:
        _signed(sim, mine, [ORDERS])
        theirs.subscribe([ORDERS], subscribe_signature(other_key, other_secret))
        mine.until_barrier()
        theirs.until_barrier()
        sent = sim.ws.sent
        reply = _rest_market_order(sim)
        assert reply.status_code == 200
        assert sim.ws.sent >= sent + 2  # accepted and filled were on the wire before the reply was written
        assert [e["e"] for e in data_of(mine.until_barrier(), ORDERS)] == ["orderAccepted", "orderFill"]
        assert theirs.until_barrier() == []


def _rest_market_order(sim: BackpackSim) -> requests.Response:
    from tests.conformance.conftest import BackpackCaller  # the project's signer, as the conformance suite uses

    body = {"symbol": BTC, "side": "Bid", "orderType": "Market", "quantity": "0.01"}
    return BackpackCaller(sim)("POST", "/api/v1/order", body=body, instruction="orderExecute")


def test_dropping_private_connections_leaves_public_ones_open(sim: BackpackSim) -> None:
    with StreamClient(sim) as private, StreamClient(sim) as public:
        _signed(sim, private, [ORDERS])
        public.subscribe([f"markPrice.{BTC}"])
        private.until_barrier()
        assert _fault(sim, {"kind": "drop_private_ws"}) == {"dropped": 1}
        with pytest.raises(ConnectionClosed):
            private.until_barrier()
        public.until_barrier()  # still answered
        assert sim.engine.faults.taken["drop_private_ws"] == 1


def test_silence_keeps_the_socket_open_but_pushes_nothing_until_lifted(sim: BackpackSim) -> None:
    with StreamClient(sim) as client:
        _signed(sim, client, [ORDERS])
        client.until_barrier()
        _fault(sim, {"kind": "silence_private", "on": True})
        _market(sim, BTC, Side.LONG, "0.01")
        assert client.until_barrier() == []
        assert sim.engine.faults.taken["silence_private"] == 3  # accepted, fill, position opened
        _fault(sim, {"kind": "silence_private", "on": False})
        _market(sim, BTC, Side.LONG, "0.01")
        assert [e["e"] for e in data_of(client.until_barrier(), ORDERS)] == ["orderAccepted", "orderFill"]


def test_reordering_delivers_an_event_after_its_successor(sim: BackpackSim) -> None:
    with StreamClient(sim) as client:
        _signed(sim, client, [ORDERS])
        client.until_barrier()
        _fault(sim, {"kind": "reorder_private", "count": 1})
        _market(sim, BTC, Side.LONG, "0.01")
        assert [e["e"] for e in data_of(client.until_barrier(), ORDERS)] == ["orderFill", "orderAccepted"]
        assert sim.engine.faults.taken["reorder_private"] == 1
        _fault(sim, {"kind": "reorder_private", "count": 1})
        mark = sim.engine.mark(BTC)
        sim.engine.place(sim.account(), symbol=BTC, side=Side.LONG, order_type=OrderType.LIMIT, quantity=D("0.01"),
                         price=(mark / 2).quantize(D("0.1")))  # fmt: skip
        assert client.until_barrier() == []  # held: no successor yet
        assert sim.streams.private.release_held(max_age_s=0) == 1
        assert [e["e"] for e in data_of(client.until_barrier(), ORDERS)] == ["orderAccepted"]


def test_depth_starts_with_the_whole_book_and_continues_without_gaps(sim: BackpackSim) -> None:
    with StreamClient(sim) as client:
        client.subscribe([f"depth.{BTC}"])
        first = client.recv()["data"]
        assert first["U"] == first["u"]
        book = {"a": dict(first["a"]), "b": dict(first["b"])}
        last = first["u"]
        sim.prices.jump("BTC", D("0.002"))
        rest = requests.get(f"{sim.rest_url}/api/v1/depth", params={"symbol": BTC}, timeout=5).json()
        for frame in client.until_barrier():
            data = frame["data"]
            assert data["U"] == last + 1
            last = data["u"]
            for side in ("a", "b"):
                for price, qty in data[side]:
                    book[side][price] = qty
        assert last == int(rest["lastUpdateId"]) > first["u"]
        live = {side: {p: q for p, q in levels.items() if q != "0"} for side, levels in book.items()}
        assert live == {"a": dict(map(tuple, rest["asks"])), "b": dict(map(tuple, rest["bids"]))}
