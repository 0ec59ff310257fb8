"""Backpack simulator: the signed /wapi/v1/history routes (orders, fills, funding, settlements, positions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.domain import Side
from exchanges.backpack.sim_wire import (
    LIQUIDATION_ORDER_TYPE,
    MARKET_TYPES,
    SIDE,
    SORT,
    iso,
    ms,
    order_json,
    s,
)
from exchanges.sim import params as prm
from exchanges.sim.engine import SimAccount, SimEngine, SimFill
from exchanges.sim.http import Response

FILL_TYPES = ("User", "BookLiquidation", "Adl", "Backstop", "Liquidation", "AllLiquidation", "CollateralConversion",
              "CollateralConversionAndSpotLiquidation")  # fmt: skip
SETTLEMENT_SOURCES = ("BackstopLiquidation", "CulledBorrowInterest", "CulledRealizePnl",
                      "CulledRealizePnlBookUtilization", "FundingPayment", "RealizePnl", "TradingFees",
                      "TradingFeesSystem")  # fmt: skip


@dataclass
class _Lifecycle:
    """One position from opening to flat, rebuilt from the account's fills."""

    symbol: str
    opened_at: datetime
    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)
    volume_closed: Decimal = Decimal(0)
    closed_at: datetime | None = None
    closing_price: Decimal | None = None
    fills: list[SimFill] = field(default_factory=list)


def _listing(p: dict[str, Any], rows: list[Any], *, newest_first_by_default: bool = True) -> list[Any]:
    """Sort (rows come oldest first) and page a history listing as its parameters ask."""
    direction = prm.choice(p, "sortDirection", SORT, default="Desc" if newest_first_by_default else "Asc")
    limit = prm.integer(p, "limit", default=100, low=1, high=1000)
    offset = prm.integer(p, "offset", default=0)
    ordered = list(reversed(rows)) if direction == "Desc" else rows
    return prm.page(ordered, offset, limit)


class BackpackHistoryApi:
    """Mixin for BackpackSim."""

    engine: SimEngine

    def history_routes(self) -> dict[tuple[str, str], tuple[str, Callable[[SimAccount, Any], Response]]]:
        """(method, path) -> (signing instruction, handler)."""
        return {
            ("GET", "/wapi/v1/history/orders"): ("orderHistoryQueryAll", self._order_history),
            ("GET", "/wapi/v1/history/fills"): ("fillHistoryQueryAll", self._fills),
            ("GET", "/wapi/v1/history/funding"): ("fundingHistoryQueryAll", self._funding),
            ("GET", "/wapi/v1/history/settlement"): ("settlementHistoryQueryAll", self._settlements),
            ("GET", "/wapi/v1/history/position"): ("positionHistoryQueryAll", self._position_history),
        }

    def _order_history(self, account: SimAccount, p: dict[str, Any]) -> Response:
        symbol, order_id = prm.text(p, "symbol"), prm.text(p, "orderId")
        prm.text(p, "strategyId")
        kind = prm.choice(p, "marketType", MARKET_TYPES)
        orders = [o for o in account.orders.values()
                  if symbol in (None, o.symbol) and order_id in (None, o.id) and kind in (None, "PERP")]  # fmt: skip
        return Response(200, [order_json(o, history=True) for o in _listing(p, orders)])

    def _fills(self, account: SimAccount, p: dict[str, Any]) -> Response:
        symbol, order_id = prm.text(p, "symbol"), prm.text(p, "orderId")
        prm.text(p, "strategyId")
        since, until = prm.integer(p, "from", low=-(2**63)), prm.integer(p, "to", low=-(2**63))
        fill_type = prm.choice(p, "fillType", FILL_TYPES)
        kind = prm.choice(p, "marketType", MARKET_TYPES)
        fills = [
            f for f in account.fills
            if symbol in (None, f.symbol) and order_id in (None, f.order_id) and kind in (None, "PERP")
            and (since is None or ms(f.ts) >= since) and (until is None or ms(f.ts) < until)
            and (fill_type is None or (fill_type == "User") != f.system)
        ]  # fmt: skip
        out = []
        for f in _listing(p, fills):
            row: dict[str, Any] = {
                "tradeId": f.trade_id, "orderId": f.order_id, "symbol": f.symbol, "side": SIDE[f.side],
                "price": s(f.price), "quantity": s(f.quantity), "fee": s(f.fee), "feeSymbol": "USDC",
                "isMaker": f.is_maker, "timestamp": iso(f.ts),
            }  # fmt: skip
            if f.client_id is not None:
                row["clientId"] = f.client_id
            if f.system:
                row["systemOrderType"] = LIQUIDATION_ORDER_TYPE
            out.append(row)
        return Response(200, out)

    def _funding(self, account: SimAccount, p: dict[str, Any]) -> Response:
        prm.integer(p, "subaccountId", high=65535)
        symbol = prm.text(p, "symbol")
        items = [f for f in account.funding if symbol in (None, f.symbol)]
        return Response(200, [{
            "userId": 1, "symbol": f.symbol, "quantity": s(f.amount),
            "intervalEndTimestamp": iso(f.ts), "fundingRate": s(f.rate),
        } for f in _listing(p, items)])  # fmt: skip

    def _settlements(self, account: SimAccount, p: dict[str, Any]) -> Response:
        source = prm.choice(p, "source", SETTLEMENT_SOURCES)
        rows: list[tuple[datetime, str, Decimal, str]] = []
        for f in account.fills:
            rows.append((f.ts, "TradingFees", -f.fee, f.symbol))
            if f.realized_pnl:
                rows.append((f.ts, "RealizePnl", f.realized_pnl, f.symbol))
        rows += [(f.ts, "FundingPayment", f.amount, f.symbol) for f in account.funding]
        rows = [r for r in sorted(rows, key=lambda r: r[0]) if source in (None, r[1])]
        return Response(200, [
            {"userId": 1, "positionId": f"{account.name}-{sym}", "quantity": s(qty), "source": src,
             "timestamp": iso(ts)}
            for ts, src, qty, sym in _listing(p, rows)
        ])  # fmt: skip

    def _lifecycles(self, account: SimAccount) -> list[_Lifecycle]:
        done: list[_Lifecycle] = []
        current: dict[str, _Lifecycle] = {}
        for f in account.fills:
            life = current.get(f.symbol) or current.setdefault(f.symbol, _Lifecycle(f.symbol, f.ts))
            signed = f.quantity if f.side is Side.LONG else -f.quantity
            if life.quantity and (life.quantity > 0) != (signed > 0):
                life.volume_closed += min(abs(signed), abs(life.quantity))
            life.quantity += signed
            life.cost += signed * f.price
            life.fees += f.fee
            life.realized += f.realized_pnl
            life.fills.append(f)
            if life.quantity == 0:
                life.closed_at, life.closing_price = f.ts, f.price
                done.append(current.pop(f.symbol))
        return done + list(current.values())

    def _position_history(self, account: SimAccount, p: dict[str, Any]) -> Response:
        symbol = prm.text(p, "symbol")
        state = prm.choice(p, "state", ("Open", "Closed"))
        kind = prm.choice(p, "marketType", MARKET_TYPES)
        rows = []
        for n, life in enumerate(self._lifecycles(account)):
            life_state = "Closed" if life.closed_at else "Open"
            if symbol not in (None, life.symbol) or state not in (None, life_state) or kind not in (None, "PERP"):
                continue
            mark = self.engine.mark(life.symbol)
            entry = abs(life.cost / life.quantity) if life.quantity else life.fills[0].price
            funding = sum((f.amount for f in account.funding
                           if f.symbol == life.symbol and life.opened_at <= f.ts <= (life.closed_at or f.ts)),
                          Decimal(0))  # fmt: skip
            row: dict[str, Any] = {
                "id": f"{account.name}-{life.symbol}-{n}", "symbol": life.symbol, "state": life_state,
                "entryPrice": s(entry), "markPrice": s(mark), "netQuantity": s(life.quantity),
                "netCost": s(life.cost), "netExposureQuantity": s(abs(life.quantity)),
                "netExposureNotional": s(abs(life.quantity) * mark), "closedVolume": s(life.volume_closed),
                "cumulativePnlRealized": s(life.realized), "fees": s(life.fees), "fundingQuantity": s(funding),
                "unrealizedPnl": s((mark - entry) * life.quantity), "imf": s(self.engine.markets[life.symbol]
                                                                            .initial_margin_rate),
                "interest": "0", "liquidated": "0", "liquidationFees": "0", "openedAt": iso(life.opened_at),
            }  # fmt: skip
            if life.closed_at is not None and life.closing_price is not None:  # both set as it went flat
                row |= {"closedAt": iso(life.closed_at), "closingPrice": s(life.closing_price)}
            rows.append(row)
        return Response(200, _listing(p, rows))
