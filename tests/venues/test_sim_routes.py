"""Simulator behaviour beyond the wire shapes (tests/conformance checks those): Backpack's liquidation estimate
only on a one-symbol position query, the engine's order listeners, and Hibachi's order modify."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.clock import SystemClock
from core.domain import Side
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderType
from exchanges.hibachi.sim import HibachiSim
from exchanges.sim.engine import SimAccount, SimOrder, SimRejectError
from tests.conformance.conftest import BackpackCaller

BTC = "BTC_USDC_PERP"


def test_backpack_lists_positions_without_a_liquidation_estimate_like_the_venue() -> None:
    with BackpackSim(seed=3, liquidation_in_list=False) as sim:
        client = BackpackClient(sim.rest_url, sim.api_key, sim.api_secret, clock=SystemClock(), read_timeout_s=2.0)
        client.set_leverage(BTC, D(20))
        call = BackpackCaller(sim)
        body = {"symbol": BTC, "side": "Bid", "orderType": "Market", "quantity": "2.5"}
        assert call("POST", "/api/v1/order", body=body, instruction="orderExecute").status_code == 200
        (listed,) = call("GET", "/api/v1/position", params={}, instruction="positionQuery").json()
        (one,) = call("GET", "/api/v1/position", params={"symbol": BTC}, instruction="positionQuery").json()
        client.close()
    assert listed["estLiquidationPrice"] == "0"
    assert D(one["estLiquidationPrice"]) > 0


def test_engine_order_listeners_see_every_change_in_order() -> None:
    seen: list[tuple[str, str]] = []
    with BackpackSim(seed=3) as sim:

        def listen(_account: SimAccount, order: SimOrder) -> None:
            seen.append((order.client_id or "", order.status.value))

        sim.engine.order_listeners.append(listen)
        account = sim.account()
        mark = sim.engine.mark(BTC)
        sim.engine.place(account, symbol=BTC, side=Side.LONG, order_type=OrderType.MARKET, quantity=D("0.01"),
                         client_id="1")  # fmt: skip
        sim.engine.place(account, symbol=BTC, side=Side.LONG, order_type=OrderType.LIMIT, quantity=D("0.01"),
                         price=(mark / 2).quantize(D("0.1")), client_id="2")  # fmt: skip
        sim.engine.cancel(account, client_id="2")
    assert [s for c, s in seen if c == "1"][-1] == "filled"
    assert [s for c, s in seen if c == "2"] == ["new", "cancelled"]


def test_hibachi_modify_changes_a_resting_order_and_refuses_a_filled_one() -> None:
    with HibachiSim(seed=3) as sim:
        account = sim.account()
        order = sim.engine.place(account, symbol="SOL/USDT-P", side=Side.LONG, order_type=OrderType.LIMIT,
                                 quantity=D(1), price=D(1))  # fmt: skip
        sim.engine.modify(account, order.id, quantity=D(2), price=D("1.5"))
        assert (order.quantity, order.price) == (D(2), D("1.5"))
        mark = sim.engine.mark("SOL/USDT-P")
        sim.engine.modify(account, order.id, quantity=D(2), price=(mark * 2).quantize(D("0.001")))  # crosses: fills
        assert order.status.is_final
        with pytest.raises(SimRejectError):
            sim.engine.modify(account, order.id, quantity=D(1), price=D(1))
