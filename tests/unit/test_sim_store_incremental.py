"""The simulators' incremental save: the JSON text a save writes, re-encoding only the accounts changed since the
last save, always equals the full dump, whatever kind of change came between."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest

from core.clock import FakeClock
from core.domain import Side
from exchanges.base import OrderType
from exchanges.sim import store
from exchanges.sim.engine import SimAccount, SimEngine, SimMarket
from exchanges.sim.price import PriceSource
from exchanges.sim.store import dump_engine, dump_engine_json, load_engine

NAMES = ("alice", "bob", "carol")


def _engine(clock: FakeClock) -> SimEngine:
    btc = SimMarket("BTC", "BTC", D("0.1"), D("0.001"), D("0.001"), funding_interval_s=3600)
    return SimEngine("v", [btc], PriceSource(clock, seed=1), clock, maker_fee=D(0), taker_fee=D("0.0005"))


def _market(engine: SimEngine, account: SimAccount, side: Side, quantity: str = "0.01") -> None:
    engine.place(account, symbol="BTC", side=side, order_type=OrderType.MARKET, quantity=D(quantity))


def _resting(engine: SimEngine, account: SimAccount, side: Side, away: str) -> str:
    mark = engine.mark("BTC")
    price = (mark - D(away) if side is Side.LONG else mark + D(away)).quantize(D("0.1"))
    return engine.place(
        account, symbol="BTC", side=side, order_type=OrderType.LIMIT, quantity=D("0.01"), price=price
    ).id


def _full(engine: SimEngine) -> dict[str, Any]:
    return json.loads(json.dumps(dump_engine(engine)))


@pytest.fixture
def encoded_names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the accounts encoded, in order, by every dump_engine_json call of the test."""
    names: list[str] = []
    encode = store._account_json

    def counting(acc: SimAccount) -> str:
        names.append(acc.name)
        return encode(acc)

    monkeypatch.setattr(store, "_account_json", counting)
    return names


def test_every_kind_of_change_reaches_the_saved_text_and_only_its_account_is_re_encoded(
    encoded_names: list[str],
) -> None:
    clock = FakeClock()
    engine = _engine(clock)
    accounts = {name: engine.open_account(name, D(100_000)) for name in NAMES}
    encoded: dict[str, str] = {}
    alice, bob, carol = accounts.values()
    resting: dict[str, str] = {}

    def amend() -> None:
        order = engine.find_order(bob, order_id=resting["bob"])
        engine.modify(bob, order.id, quantity=D("0.02"), price=order.price)

    def set_leverage() -> None:
        carol.leverage_limit = D(3)  # as a venue's wire layer does, then says so
        engine.touch(carol)

    steps: list[tuple[str, Callable[[], None], set[str]]] = [
        ("market order", lambda: _market(engine, alice, Side.LONG), {"alice"}),
        ("resting order", lambda: resting.setdefault("bob", _resting(engine, bob, Side.LONG, "500")), {"bob"}),
        ("amend", amend, {"bob"}),
        ("cancel", lambda: engine.cancel(bob, order_id=resting["bob"]), {"bob"}),
        ("market imr", lambda: engine.set_market_imr(carol, "BTC", D("0.5")), {"carol"}),
        ("wire layer field", set_leverage, {"carol"}),
        ("a change of anything", engine.touch, set(NAMES)),
        ("new account", lambda: accounts.setdefault("dave", engine.open_account("dave", D(5))), {"dave"}),
    ]
    text, version = dump_engine_json(engine, encoded)
    assert json.loads(text) == _full(engine) and version == engine.version
    assert sorted(encoded_names) == sorted(NAMES)  # the first save encodes everyone
    for what, change, expected in steps:
        encoded_names.clear()
        before = engine.version
        change()
        assert engine.version > before, what
        text, version = dump_engine_json(engine, encoded)
        assert json.loads(text) == _full(engine), what
        assert version == engine.version, what
        assert set(encoded_names) == expected, what
    encoded_names.clear()
    text, _ = dump_engine_json(engine, encoded)  # nothing changed: nothing re-encoded, the same text
    assert encoded_names == [] and json.loads(text) == _full(engine)


def test_funding_and_resting_fills_over_time_reach_the_saved_text(encoded_names: list[str]) -> None:
    clock = FakeClock()
    engine = _engine(clock)
    alice, bob = engine.open_account("alice", D(100_000)), engine.open_account("bob", D(100_000))
    _market(engine, alice, Side.LONG, "0.1")
    _resting(engine, bob, Side.SHORT, "0.1")  # near the mark: the tape fills it as time passes
    encoded: dict[str, str] = {}
    dump_engine_json(engine, encoded)
    for _ in range(120):  # two funding settlements, and prints that fill the resting order
        clock.advance(60)
        engine.tick()
        text, _ = dump_engine_json(engine, encoded)
        assert json.loads(text) == _full(engine)
    assert alice.funding and bob.fills  # the run did what it is here for


def test_a_restored_engine_is_re_encoded_whole() -> None:
    clock = FakeClock()
    source = _engine(clock)
    _market(source, source.open_account("alice", D(100_000)), Side.LONG)
    target = _engine(clock)
    target.open_account("alice", D(1))
    encoded: dict[str, str] = {}
    dump_engine_json(target, encoded)  # alice as she was before the restore
    load_engine(target, dump_engine(source))
    text, _ = dump_engine_json(target, encoded)
    assert json.loads(text) == _full(source)


def test_a_save_that_failed_to_encode_leaves_its_changes_for_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    engine = _engine(clock)
    alice = engine.open_account("alice", D(100_000))
    encoded: dict[str, str] = {}
    dump_engine_json(engine, encoded)
    _market(engine, alice, Side.LONG)
    encode = store._account_json

    def failing(_acc: SimAccount) -> str:
        raise OSError("no memory for the text")

    monkeypatch.setattr(store, "_account_json", failing)
    with pytest.raises(OSError, match="no memory"):
        dump_engine_json(engine, encoded)
    monkeypatch.setattr(store, "_account_json", encode)
    text, _ = dump_engine_json(engine, encoded)
    assert json.loads(text) == _full(engine)  # alice's order is in it: the failed call did not forget her change
