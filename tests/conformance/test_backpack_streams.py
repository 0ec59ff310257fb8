"""Every Backpack simulator stream, subscribed on a running simulator: each received frame is validated against
its channel's message payload in the AsyncAPI definition (the structural copy tests/data/backpack-asyncapi.json)
with jsonschema, and must carry the fields spec §5 promises and no field either document does not know."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal as D
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from core.domain import Side
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderType
from tests.helpers import ROOT
from tests.venues.backpack_ws import StreamClient, subscribe_signature

DATA = "tests/data/backpack-asyncapi.json"
BTC = "BTC_USDC_PERP"
PUBLIC = [f"bookTicker.{BTC}", f"markPrice.{BTC}", f"depth.{BTC}", f"ticker.{BTC}", f"trade.{BTC}",
          f"openInterest.{BTC}", f"kline.1m.{BTC}", f"kline.1s.{BTC}", "liquidation"]  # fmt: skip
PRIVATE = ["account.orderUpdate", f"account.orderUpdate.{BTC}", "account.positionUpdate",
           f"account.positionUpdate.{BTC}"]  # fmt: skip
# The fields spec §5 lists for each event (the AsyncAPI marks none required); a field present in neither
# document is a typo. `r` (reduce-only) is in spec §5 but not in the AsyncAPI's order schema.
PROMISED = {
    "bookTicker": "e E s a A b B u T", "depth": "e E s a b U u T", "trade": "e E s p q b a t m T",
    "markPrice": "e E s p f i n T", "ticker": "e E s o c h l v V n", "kline": "e E s t T o c h l v n X",
    "openInterest": "e E s o", "liquidation": "e E q p S s T", "account.orderUpdate": "e E s i S o f X z Z T",
    "account.positionUpdate": "E s i q Q n B b M f m p P T",
}  # fmt: skip
ON_FILLS = "l L t m n N"
EXTRA = {"account.orderUpdate": {"r"}}


@cache
def definition() -> dict[str, Any]:
    return json.loads((ROOT / DATA).read_text())  # type: ignore[no-any-return]


def message_for(stream: str) -> str:
    """The message name of the channel whose address template matches `stream`."""
    for address, channel in definition()["channels"].items():
        pattern = re.sub(r"\\\{[a-z]+\\\}", "[A-Za-z0-9_]+", re.escape(address))
        if re.fullmatch(pattern, stream):
            return str(channel["subscribe"]["message"]["$ref"]).rsplit("/", 1)[-1]
    raise AssertionError(f"no channel of the definition serves {stream}")


def check(frame: dict[str, Any]) -> str:
    """Validate one frame; returns its stream's family (the PROMISED key)."""
    stream = frame["stream"]
    name = message_for(stream)
    doc = definition()
    Draft202012Validator(doc | {"$ref": f"#/components/messages/{name}/payload"}).validate(frame)
    family = next(k for k in sorted(PROMISED, key=len, reverse=True) if stream == k or stream.startswith(f"{k}."))
    data = frame["data"]
    event_ref = doc["components"]["messages"][name]["payload"]["allOf"][1]["properties"]["data"]["$ref"]
    known = set(doc["components"]["schemas"][event_ref.rsplit("/", 1)[-1]]["properties"]) | EXTRA.get(family, set())
    assert set(data) <= known, f"{stream}: fields no document knows: {set(data) - known}"
    promised = set(PROMISED[family].split()) | (set(ON_FILLS.split()) if data.get("e") == "orderFill" else set())
    if family == "account.positionUpdate" and "e" in data:
        promised.add("e")
    assert promised <= set(data), f"{stream}: missing {promised - set(data)}"
    return family


@pytest.fixture
def sim() -> Iterator[BackpackSim]:
    s = BackpackSim(seed=12, publish_interval_s=0.02).start()
    yield s
    s.stop()


def _trade(sim: BackpackSim) -> None:
    """Every kind of order event: fills (one and several), a partial fill that expires, a cancel, a liquidation."""
    paper = sim.account()
    sim.engine.place(paper, symbol=BTC, side=Side.LONG, order_type=OrderType.MARKET, quantity=D("0.01"),
                     client_id="1")  # fmt: skip
    sim.engine.faults.partial_fills(1, D("0.5"))
    sim.engine.place(paper, symbol=BTC, side=Side.SHORT, order_type=OrderType.MARKET, quantity=D("0.02"))
    low = (sim.engine.mark(BTC) / 2).quantize(D("0.1"))
    resting = sim.engine.place(paper, symbol=BTC, side=Side.LONG, order_type=OrderType.LIMIT, quantity=D("0.01"),
                               price=low, client_id="2")  # fmt: skip
    sim.engine.cancel(paper, order_id=resting.id)
    _secret, weak_key = sim.add_account("weak", D(100))
    weak = sim.account(weak_key)
    sim.engine.place(weak, symbol=BTC, side=Side.LONG, order_type=OrderType.MARKET, quantity=D("0.015"))
    sim.prices.jump("BTC", D(-10))  # percent
    with sim.engine.lock:
        sim.engine.tick()
    assert weak.liquidations == 1


def test_every_stream_frame_matches_the_asyncapi_definition(sim: BackpackSim) -> None:
    sim.engine.place(sim.account(), symbol=BTC, side=Side.LONG, order_type=OrderType.MARKET, quantity=D("0.05"))
    seen: dict[str, int] = {}
    kinds: set[tuple[str, str | None]] = set()
    with StreamClient(sim) as public, StreamClient(sim) as private:
        public.subscribe(PUBLIC)
        private.subscribe(PRIVATE, subscribe_signature(sim.api_key, sim.api_secret))
        frames = private.until_barrier()  # the position snapshots, before any order event
        _trade(sim)
        deadline = time.monotonic() + 10
        while set(PUBLIC + PRIVATE) - set(seen) and time.monotonic() < deadline:
            frames += public.until_barrier() + private.until_barrier()
            for frame in frames:
                kinds.add((check(frame), frame["data"].get("e")))
                seen[frame["stream"]] = seen.get(frame["stream"], 0) + 1
            frames = []
    assert set(seen) == set(PUBLIC + PRIVATE)
    orders = {e for family, e in kinds if family == "account.orderUpdate"}
    assert orders == {"orderAccepted", "orderFill", "orderExpired", "orderCancelled"}
    positions = {e for family, e in kinds if family == "account.positionUpdate"}
    assert positions == {None, "positionAdjusted"}  # the snapshot on subscribe, then the paper account's trades


def test_the_checker_refuses_a_frame_off_the_definition() -> None:
    good = {"stream": f"trade.{BTC}", "data": {"e": "trade", "E": 1, "s": BTC, "p": "1", "q": "1", "b": "1",
                                               "a": "0", "t": 1, "m": False, "T": 1}}  # fmt: skip
    assert check(good) == "trade"
    no_price = {k: v for k, v in good["data"].items() if k != "p"}
    for bad in ({**good["data"], "t": "1"}, {**good["data"], "x": 1}, no_price):
        with pytest.raises(Exception, match=r"'1' is not of type 'integer'|no document knows|missing"):
            check({"stream": good["stream"], "data": bad})
