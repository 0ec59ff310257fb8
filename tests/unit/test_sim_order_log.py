"""The per-process session tag in our User-Agent, and the simulators' order log: the server sets the sender
around each request, the engine logs every order it saw with it, interleavings() finds two senders' runs of
orders on one account overlapping."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import warnings
from decimal import Decimal as D
from typing import Any

import pytest
import requests

from core.clock import FakeClock
from core.domain import Side
from exchanges.base import OrderType
from exchanges.errors import VenueError
from exchanges.http import RestTransport, session_of, session_tag, user_agent
from exchanges.sim.engine import SimEngine, SimMarket, SimRejectError
from exchanges.sim.faults import Faults, InjectedHttpError
from exchanges.sim.http import Request, Response, SimHttpServer
from exchanges.sim.order_log import current_sender, interleavings, order_sender
from exchanges.sim.price import PriceSource
from tests.helpers import ROOT, clean_env


def test_the_user_agent_carries_this_process_session_tag() -> None:
    tag = session_tag()
    assert re.fullmatch(r"[0-9a-f]{8}", tag)
    assert user_agent() == f"perp-farmer/0.1 (session {tag})"
    transport = RestTransport("x", FakeClock(), lambda status, text, _retry: VenueError("x", text))
    try:
        assert transport.session.headers["User-Agent"] == user_agent()
    finally:
        transport.close()
    assert session_of(user_agent()) == tag
    assert session_of("python-requests/2.32") is None
    assert session_of(None) is None


def test_another_process_and_a_forked_child_draw_tags_of_their_own() -> None:
    code = "from exchanges.http import session_tag; print(session_tag())"
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                           check=True, timeout=60).stdout.strip()  # fmt: skip
    assert re.fullmatch(r"[0-9a-f]{8}", other)
    assert other != session_tag()
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork in a threaded process: the child only writes
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, session_tag().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{8}", child)
    assert child != session_tag()


def _engine(clock: FakeClock | None = None) -> SimEngine:
    btc = SimMarket("BTC", "BTC", D("0.1"), D("0.001"), D("0.001"))
    clock = clock or FakeClock()
    return SimEngine("v", [btc], PriceSource(clock, seed=1), clock, maker_fee=D(0), taker_fee=D("0.0005"))


def test_the_engine_logs_every_order_it_saw_with_its_sender_refused_ones_too() -> None:
    clock = FakeClock()
    engine = _engine(clock)
    alice, bob = engine.open_account("alice", D(100000)), engine.open_account("bob", D(100000))
    with order_sender("worker-1"):
        first = engine.place(alice, symbol="BTC", side=Side.LONG, order_type=OrderType.MARKET, quantity=D("0.01"),
                             client_id="a1")  # fmt: skip
        with pytest.raises(SimRejectError):
            engine.place(alice, symbol="BTC", side=Side.LONG, order_type=OrderType.MARKET, quantity=D("0.0001"),
                         client_id="a2")  # fmt: skip
    assert current_sender() is None  # the block restored it
    clock.advance(5)
    engine.place(bob, symbol="BTC", side=Side.SHORT, order_type=OrderType.MARKET, quantity=D("0.01"), client_id="b1")
    got = [e.to_json() for e in engine.order_log.since()]
    assert [(e["seq"], e["account"], e["client_id"], e["side"], e["refused"], e["sender"]) for e in got] == [
        (1, "alice", "a1", "long", None, "worker-1"),
        (2, "alice", "a2", "long", "bad_quantity", "worker-1"),
        (3, "bob", "b1", "short", None, None),  # placed in-process: no sender
    ]
    assert got[0]["order_id"] == first.id and got[1]["order_id"] is None
    assert got[2]["at"] > got[0]["at"]
    assert [e.seq for e in engine.order_log.since(1, "alice")] == [2]


def _server(engine: SimEngine) -> SimHttpServer:
    alice = engine.open_account("alice", D(100000))

    def place(request: Request) -> Response:
        order = engine.place(alice, symbol="BTC", side=Side.LONG, order_type=OrderType.MARKET, quantity=D("0.01"),
                             client_id=request.query["id"])  # fmt: skip
        return Response(200, {"id": order.id, "sender": current_sender()})

    def error(injected: InjectedHttpError) -> Response:
        return Response(injected.status, {})

    return SimHttpServer({("POST", "/order"): place}, lambda _r: Response(404), Faults(engine.clock), error)


def test_the_http_server_logs_a_requests_orders_as_sent_by_its_user_agent_else_http() -> None:
    engine = _engine()
    server = _server(engine).start()
    try:
        ours = requests.post(f"{server.url}/order", params={"id": "1"}, timeout=5,
                             headers={"User-Agent": "perp-farmer/0.1 (session 0000abcd)"})  # fmt: skip
        assert ours.json()["sender"] == "perp-farmer/0.1 (session 0000abcd)"
        bare = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)  # it sends no User-Agent
        bare.request("POST", "/order?id=2")
        assert json.loads(bare.getresponse().read())["sender"] == "http"
        bare.close()
    finally:
        server.stop()
    assert current_sender() is None
    logged = [(e["client_id"], e["sender"], e["session"]) for e in (x.to_json() for x in engine.order_log.since())]
    assert logged == [("1", "perp-farmer/0.1 (session 0000abcd)", "0000abcd"), ("2", "http", None)]


def _entry(seq: int, account: str, sender: str, second: int) -> dict[str, Any]:
    return {"seq": seq, "account": account, "sender": sender, "at": f"2026-01-01T00:00:{second:02d}+00:00"}


def test_interleavings_find_a_sender_resuming_after_another_on_one_account_across_venues() -> None:
    one_after_other = [_entry(1, "a", "w1", 1), _entry(2, "a", "w1", 2), _entry(1, "a", "w2", 3),
                       _entry(3, "b", "w1", 4), _entry(2, "a", "w2", 5)]  # fmt: skip
    assert interleavings(one_after_other) == []  # w1 stopped on a before w2 began; b is another account
    resumed = [*one_after_other, _entry(4, "a", "w1", 6)]  # another venue's log, merged by time
    assert interleavings(resumed) == ["a: 'w1' sent order seq 4 after another sender's"]
