"""Backpack simulator: the signed account, capital, position and order routes (handlers take the verified
account and the signed parameters)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

from core.domain import Side
from exchanges.backpack.sim_wire import (
    MARKET_TYPES,
    SIDE_IN,
    error,
    margin_function,
    order_json,
    s,
)
from exchanges.base import OrderType, TimeInForce
from exchanges.sim import params as prm
from exchanges.sim.engine import SimAccount, SimEngine, SimRejectError
from exchanges.sim.http import NeverAnswerError, Response

PrivateHandler = Callable[[SimAccount, Any], Response]
MAX_BATCH = 20  # undocumented at the venue (spec §3: ccxt assumes 20); ours


class BackpackPrivateApi:
    """Mixin for BackpackSim; `_reject` turns an engine refusal into Backpack's error reply."""

    engine: SimEngine
    # The venue estimates liquidation prices only when asked for one symbol: its list says "0" (spec §3.3).
    # True puts the estimate in the list as well (not the venue's behaviour; for experiments only).
    liquidation_in_list: bool = False

    _reject: Callable[[SimRejectError], Response]  # provided by BackpackSim

    def private_routes(self) -> dict[tuple[str, str], tuple[str, PrivateHandler]]:
        """(method, path) -> (signing instruction, handler) for the account, capital, position and order routes."""
        return {
            ("GET", "/api/v1/account"): ("accountQuery", self._account),
            ("PATCH", "/api/v1/account"): ("accountUpdate", self._update_account),
            ("GET", "/api/v1/account/limits/order"): ("maxOrderQuantity", self._max_order_quantity),
            ("GET", "/api/v1/capital"): ("balanceQuery", self._balances),
            ("GET", "/api/v1/capital/collateral"): ("collateralQuery", self._collateral),
            ("GET", "/api/v1/position"): ("positionQuery", self._positions),
            ("GET", "/api/v1/order"): ("orderQuery", self._get_order),
            ("POST", "/api/v1/order"): ("orderExecute", self._place),
            ("DELETE", "/api/v1/order"): ("orderCancel", self._cancel),
            ("GET", "/api/v1/orders"): ("orderQueryAll", self._open_orders),
            ("POST", "/api/v1/orders"): ("orderExecute", self._place_batch),
            ("DELETE", "/api/v1/orders"): ("orderCancelAll", self._cancel_all),
        }

    # ---- account ----------------------------------------------------------------------------------------

    def _account(self, account: SimAccount, _p: dict[str, Any]) -> Response:
        open_limits = sum(1 for o in account.orders.values() if not o.status.is_final)
        return Response(200, {
            "leverageLimit": s(account.leverage_limit),
            "futuresMakerFee": s(self.engine.maker_fee * 10000), "futuresTakerFee": s(self.engine.taker_fee * 10000),
            "spotMakerFee": "8", "spotTakerFee": "10",
            # Documented as required decimal strings; a perp-only paper account borrows nothing and has no cap.
            "positionLimit": "0", "borrowLimit": "0",
            "limitOrders": open_limits, "triggerOrders": 0, "liquidating": False, "autoBorrowSettlements": True,
            "autoLend": False, "autoRealizePnl": True, "autoRepayBorrows": True,
        })  # fmt: skip

    def _update_account(self, account: SimAccount, p: dict[str, Any]) -> Response:
        for flag in ("autoBorrowSettlements", "autoLend", "autoRepayBorrows"):
            prm.boolean(p, flag)
        leverage = prm.decimal(p, "leverageLimit")
        if leverage is not None:
            venue_max = min(1 / m.initial_margin_rate for m in self.engine.markets.values())
            if not 1 <= leverage <= venue_max:
                return error(400, "INVALID_CLIENT_REQUEST", f"leverageLimit must be within 1..{venue_max}")
            account.leverage_limit = leverage
            self.engine.touch(account)
        return Response(200, None)

    def _max_order_quantity(self, account: SimAccount, p: dict[str, Any]) -> Response:
        symbol = self._known_symbol(p)
        side = prm.choice(p, "side", SIDE_IN)
        if side is None:
            raise prm.ParamError("side is required")
        price = prm.decimal(p, "price", positive=True)
        reduce_only = prm.boolean(p, "reduceOnly")
        for flag in ("autoBorrow", "autoBorrowRepay", "autoLendRedeem"):
            prm.boolean(p, flag)
        m = self.engine.markets[symbol]
        held = account.positions[symbol].quantity if symbol in account.positions else Decimal(0)
        if reduce_only:
            room = max(-held if SIDE_IN[side] is Side.LONG else held, Decimal(0))
        else:
            free = self.engine.equity(account) - self.engine.initial_requirement(account)
            reference = price or self.engine.mark(symbol)
            room = max(free * self.engine.leverage_for(account, symbol) / reference, Decimal(0))
        out: dict[str, Any] = {
            "symbol": symbol, "side": side, "reduceOnly": reduce_only,
            "maxOrderQuantity": s(room.quantize(m.step_size, ROUND_DOWN) if room else Decimal(0)),
        }  # fmt: skip
        if price is not None:
            out["price"] = s(price)
        return Response(200, out)

    def _balances(self, account: SimAccount, _p: dict[str, Any]) -> Response:
        locked = self.engine.initial_requirement(account)
        available = max(account.collateral - locked, Decimal(0))
        return Response(200, {"USDC": {"available": s(available), "locked": s(account.collateral - available),
                                       "staked": "0"}})  # fmt: skip

    def _collateral(self, account: SimAccount, p: dict[str, Any]) -> Response:
        prm.integer(p, "subaccountId", high=65535)
        e = self.engine
        equity = e.equity(account)
        exposure = e.exposure(account)
        initial = e.initial_requirement(account)
        maintenance = e.maintenance_requirement(account)
        fraction = (lambda x: s((x / exposure).quantize(Decimal("0.00000001")))) if exposure else (lambda _x: "0")
        body = {
            "assetsValue": s(account.collateral), "borrowLiability": "0",
            "collateral": [{
                "symbol": "USDC", "assetMarkPrice": "1", "totalQuantity": s(account.collateral),
                "balanceNotional": s(account.collateral), "collateralWeight": "1",
                "collateralValue": s(account.collateral), "openOrderQuantity": "0", "lendQuantity": "0",
                "availableQuantity": s(account.collateral),
            }],
            "imf": fraction(initial), "mmf": fraction(maintenance),
            "unsettledEquity": "0", "liabilitiesValue": "0",
            "netEquity": s(equity), "netEquityAvailable": s(equity - initial), "netEquityLocked": s(initial),
            "netExposureFutures": s(exposure), "pnlUnrealized": s(e.unrealized(account)),
        }  # fmt: skip
        if exposure:
            body["marginFraction"] = fraction(equity)
        return Response(200, body)

    def _positions(self, account: SimAccount, p: dict[str, Any]) -> Response:
        wanted = prm.text(p, "symbol")
        kind = prm.choice(p, "marketType", MARKET_TYPES)
        out = []
        for symbol, pos in account.positions.items():
            if not pos.quantity or wanted not in (None, symbol) or kind not in (None, "PERP"):
                continue
            m = self.engine.markets[symbol]
            mark = self.engine.mark(symbol)
            estimate = wanted is not None or self.liquidation_in_list
            liq = self.engine.liquidation_price(account, symbol) if estimate else None
            out.append({
                "positionId": f"{account.name}-{symbol}", "symbol": symbol, "netQuantity": s(pos.quantity),
                "netExposureQuantity": s(abs(pos.quantity)), "netExposureNotional": s(abs(pos.quantity) * mark),
                "netCost": s(pos.quantity * pos.entry_price), "entryPrice": s(pos.entry_price),
                "breakEvenPrice": s(pos.entry_price), "markPrice": s(mark),
                "estLiquidationPrice": s(liq) if liq is not None else "0",
                "pnlUnrealized": s((mark - pos.entry_price) * pos.quantity), "pnlRealized": s(pos.realized_pnl),
                "cumulativeFundingPayment": s(pos.funding), "imf": s(m.initial_margin_rate),
                "mmf": s(m.maintenance_margin_rate),
                "imfFunction": margin_function(m.initial_margin_rate, "0.00006"),
                "mmfFunction": margin_function(m.maintenance_margin_rate, "0.00004"),
                "userId": 1, "cumulativeInterest": "0",
            })  # fmt: skip
        return Response(200, out)

    # ---- orders -----------------------------------------------------------------------------------------

    def _known_symbol(self, p: dict[str, Any]) -> str:
        symbol = prm.text(p, "symbol", required=True)
        if symbol not in self.engine.markets:
            raise prm.ParamError(f"Unknown symbol {symbol}")
        return symbol

    @staticmethod
    def _client_id(p: dict[str, Any]) -> str | None:
        value = prm.integer(p, "clientId", high=2**32 - 1)
        return None if value is None else str(value)

    def _execute(self, account: SimAccount, p: Any) -> dict[str, Any]:
        """Check one order payload and hand it to the engine; SimRejectError or ParamError on refusal."""
        if not isinstance(p, dict):
            raise prm.ParamError("an order must be an object")
        side = prm.choice(p, "side", SIDE_IN)
        kind = prm.choice(p, "orderType", ("Market", "Limit"))
        if side is None or kind is None:
            raise prm.ParamError("side and orderType are required")
        symbol = prm.text(p, "symbol", required=True)
        quantity = prm.decimal(p, "quantity", required=True)
        price = prm.decimal(p, "price")
        client_id = self._client_id(p)
        tif_name = prm.choice(p, "timeInForce", ("GTC", "IOC", "FOK"), default="GTC")
        prm.choice(p, "selfTradePrevention", ("RejectTaker", "RejectMaker", "RejectBoth"))
        for flag in ("autoBorrow", "autoBorrowRepay", "autoLend", "autoLendRedeem"):
            prm.boolean(p, flag)
        tif = TimeInForce.GTC
        if prm.boolean(p, "postOnly"):
            tif = TimeInForce.POST_ONLY
        elif tif_name in ("IOC", "FOK"):
            tif = TimeInForce.IOC
        order = self.engine.place(
            account, symbol=symbol, side=SIDE_IN[side],
            order_type=OrderType.MARKET if kind == "Market" else OrderType.LIMIT,
            quantity=quantity, price=price, time_in_force=tif,
            reduce_only=prm.boolean(p, "reduceOnly"), client_id=client_id,
        )  # fmt: skip
        return order_json(order)

    def _place(self, account: SimAccount, p: dict[str, Any]) -> Response:
        body = self._execute(account, p)
        if self.engine.faults.take_blackhole():
            raise NeverAnswerError
        return Response(200, body)

    def _place_batch(self, account: SimAccount, p: Any) -> Response:
        if not isinstance(p, list) or not 1 <= len(p) <= MAX_BATCH:
            raise prm.ParamError(f"the body must be an array of 1..{MAX_BATCH} orders")
        out: list[dict[str, Any]] = []
        for item in p:
            try:
                out.append({"operation": "Ok", **self._execute(account, item)})
            except SimRejectError as exc:
                refusal = self._reject(exc).body
                out.append({"operation": "Err", **refusal})
            except prm.ParamError as exc:
                out.append({"operation": "Err", "code": "INVALID_CLIENT_REQUEST", "message": str(exc)})
        return Response(200, out)

    def _get_order(self, account: SimAccount, p: dict[str, Any]) -> Response:
        symbol = self._known_symbol(p)
        order_id, client_id = prm.text(p, "orderId"), self._client_id(p)
        if (order_id is None) == (client_id is None):
            return error(400, "INVALID_CLIENT_REQUEST", "Give exactly one of orderId and clientId")
        order = self.engine.find_order(account, order_id=order_id, client_id=client_id, open_only=True)
        if order.symbol != symbol:
            return error(404, "RESOURCE_NOT_FOUND", "order not found")
        return Response(200, order_json(order))

    def _cancel(self, account: SimAccount, p: dict[str, Any]) -> Response:
        symbol = self._known_symbol(p)
        order_id, client_id = prm.text(p, "orderId"), self._client_id(p)
        if (order_id is None) == (client_id is None):
            return error(400, "INVALID_CLIENT_REQUEST", "Give exactly one of orderId and clientId")
        found = self.engine.find_order(account, order_id=order_id, client_id=client_id, open_only=True)
        if found.symbol != symbol:
            return error(404, "RESOURCE_NOT_FOUND", "order not found")
        return Response(200, order_json(self.engine.cancel(account, order_id=found.id)))

    def _open_orders(self, account: SimAccount, p: dict[str, Any]) -> Response:
        symbol = prm.text(p, "symbol")
        kind = prm.choice(p, "marketType", MARKET_TYPES)
        return Response(200, [
            order_json(o) for o in account.orders.values()
            if not o.status.is_final and symbol in (None, o.symbol) and kind in (None, "PERP")
        ])  # fmt: skip

    def _cancel_all(self, account: SimAccount, p: dict[str, Any]) -> Response:
        symbol = self._known_symbol(p)
        kind = prm.choice(p, "orderType", ("RestingLimitOrder", "ConditionalOrder"))
        if kind == "ConditionalOrder":  # the simulator has no trigger orders
            return Response(200, [])
        resting = [o for o in account.orders.values() if not o.status.is_final and o.symbol == symbol]
        return Response(200, [order_json(self.engine.cancel(account, order_id=o.id)) for o in resting])
