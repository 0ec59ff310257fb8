"""Hibachi simulator: the order routes (get, list, place, modify, cancel, batch, cancel all), each signed write
checked against the payload the venue verifies."""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from exchanges.base import OrderStatus, OrderType, TimeInForce
from exchanges.hibachi.sim_wire import (
    CLIENT_ID,
    FLAGS,
    MAKER_FEE,
    SIDE,
    SIDE_IN,
    STATUS,
    TAKER_FEE,
    SimContract,
    SimCredentials,
    error,
    expected_payload,
    s,
)
from exchanges.sim import params as prm
from exchanges.sim.engine import SimEngine, SimOrder, SimRejectError
from exchanges.sim.http import NeverAnswerError, Response

PrivateHandler = Callable[[SimCredentials, dict[str, Any]], Response]
MAX_BATCH = 50  # undocumented at the venue; ours


class HibachiOrderApi:
    """Mixin for HibachiSim."""

    engine: SimEngine
    contracts: dict[str, SimContract]
    status: str

    # Provided by HibachiSim: signature and nonce checks, and an engine refusal as the venue's error reply.
    _check_signed: Callable[[SimCredentials, bytes, Any, int | None], Response | None]
    _reject: Callable[[SimRejectError], Response]

    def order_routes(self) -> dict[tuple[str, str], PrivateHandler]:
        """(method, path) -> handler."""
        return {
            ("GET", "/trade/orders"): self._open_orders,
            ("GET", "/trade/order"): self._get_order,
            ("POST", "/trade/order"): self._place,
            ("PUT", "/trade/order"): self._modify,
            ("DELETE", "/trade/order"): self._cancel,
            ("POST", "/trade/orders"): self._batch,
            ("DELETE", "/trade/orders"): self._cancel_all,
        }

    def wire_status(self, o: SimOrder) -> str:
        """The venue's status word for an order."""
        if o.status is OrderStatus.EXPIRED:
            # IOC/market remainders end cancelled; post-only and reduce-only refusals end rejected.
            if o.expiry_reason in ("PostOnlyTaker", "ReduceOnlyNotReduced"):
                return "REJECTED"
            return "FILLED" if o.filled >= o.quantity else "CANCELLED"
        return STATUS[o.status]

    def order_json(self, creds: SimCredentials, o: SimOrder) -> dict[str, Any]:
        """An order in the shape of GET /trade/order and /trade/orders."""
        flag = None
        if o.reduce_only:
            flag = "REDUCE_ONLY"
        elif o.time_in_force is TimeInForce.IOC and o.order_type is OrderType.LIMIT:
            flag = "IOC"
        elif o.time_in_force is TimeInForce.POST_ONLY:
            flag = "POST_ONLY"
        return {
            "orderId": o.id, "accountId": creds.account_id, "contractId": self.contracts[o.symbol].id,
            "symbol": o.symbol, "side": SIDE[o.side],
            "orderType": "MARKET" if o.order_type is OrderType.MARKET else "LIMIT",
            "price": s(o.price) if o.price is not None else None, "totalQuantity": s(o.quantity),
            "availableQuantity": s(o.quantity - o.filled), "status": self.wire_status(o),
            "creationTime": int(o.created_at.timestamp()), "orderFlags": flag, "triggerPrice": None,
            "triggerDirection": None, "clientId": o.client_id,
        }  # fmt: skip

    @staticmethod
    def _check_options(creds: SimCredentials, flag: Any, fee: Decimal, client_id: Any) -> Response | None:
        """orderFlags (one value), maxFeesPercent (covers the applicable rate), clientId (valid, unused)."""
        if flag is not None and flag not in FLAGS:
            return error(400, 4, f"Invalid orderFlags {flag!r}: one of {sorted(FLAGS)}")
        needed = MAKER_FEE if flag == "POST_ONLY" else max(MAKER_FEE, TAKER_FEE)
        if fee < needed:
            return error(400, 4, f"maxFeesPercent {fee} is below the fee rate {needed}")
        if client_id is not None:
            if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
                return error(400, 4, "Invalid clientId: 1-32 characters of [A-Za-z0-9-]")
            if any(o.client_id == client_id for o in creds.account.orders.values()):
                return error(400, 4, f"Duplicate clientId {client_id}")
        return None

    @staticmethod
    def _nonce(p: Mapping[str, Any]) -> int:
        nonce = p.get("nonce")
        if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 < nonce < 2**64:
            raise prm.ParamError("Invalid nonce")
        return nonce

    def _place_one(self, creds: SimCredentials, p: Mapping[str, Any]) -> SimOrder | Response:
        if self.status != "NORMAL":
            return error(503, 4, f"Exchange is in {self.status}")
        for key in ("symbol", "nonce", "side", "orderType", "quantity", "maxFeesPercent", "signature"):
            if key not in p:
                return error(422, 4, f"Missing {key}")
        symbol, kind, side = p["symbol"], p["orderType"], SIDE_IN.get(p["side"]) if isinstance(p["side"], str) else None
        contract = self.contracts.get(symbol) if isinstance(symbol, str) else None
        if contract is None or side is None or kind not in ("LIMIT", "MARKET"):
            return error(400, 4, "Invalid symbol, side or orderType")
        if kind == "LIMIT" and p.get("price") is None:
            return error(400, 4, "Missing price for a LIMIT order")
        nonce = self._nonce(p)
        quantity = prm.decimal(p, "quantity", required=True, positive=True)
        fee = prm.decimal(p, "maxFeesPercent", required=True)
        price = prm.decimal(p, "price", positive=True) if kind == "LIMIT" else None
        payload = expected_payload(nonce, contract, quantity, side, price, fee)
        refused = self._check_signed(creds, payload, p["signature"], nonce)
        if refused is not None:
            return refused
        flag = p.get("orderFlags")
        refused = self._check_options(creds, flag, fee, p.get("clientId"))
        if refused is not None:
            return refused
        tif = {"IOC": TimeInForce.IOC, "POST_ONLY": TimeInForce.POST_ONLY}.get(flag or "", TimeInForce.GTC)
        return self.engine.place(
            creds.account, symbol=symbol, side=side,
            order_type=OrderType.MARKET if kind == "MARKET" else OrderType.LIMIT, quantity=quantity,
            price=price, time_in_force=tif, reduce_only=flag == "REDUCE_ONLY", client_id=p.get("clientId"), nonce=nonce,
        )  # fmt: skip

    def _place(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        order = self._place_one(creds, p)
        if isinstance(order, Response):
            return order
        if self.engine.faults.take_blackhole():
            raise NeverAnswerError
        return Response(200, {"orderId": order.id})

    def _find(self, creds: SimCredentials, p: Mapping[str, Any], *, open_only: bool = False) -> SimOrder:
        given = [k for k in ("orderId", "nonce", "clientId") if p.get(k) is not None]
        if len(given) != 1:
            raise prm.ParamError("Give exactly one of orderId, nonce and clientId")
        nonce = prm.integer(p, "nonce", high=2**64 - 1) if "nonce" in given else None
        order_id = None if p.get("orderId") is None else str(p["orderId"])
        client_id = p.get("clientId")
        if client_id is not None and not isinstance(client_id, str):
            raise prm.ParamError("clientId must be a string")
        return self.engine.find_order(creds.account, order_id=order_id, client_id=client_id, nonce=nonce,
                                      open_only=open_only)  # fmt: skip

    def _get_order(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        return Response(200, self.order_json(creds, self._find(creds, p)))

    def _open_orders(self, creds: SimCredentials, _p: dict[str, Any]) -> Response:
        orders = creds.account.orders.values()
        return Response(200, [self.order_json(creds, o) for o in orders if not o.status.is_final])

    def _modify(self, creds: SimCredentials, p: Mapping[str, Any]) -> Response:
        order = self._find(creds, {"orderId": p.get("orderId")}, open_only=True)
        nonce = self._nonce(p)
        # The SDK sends both spellings (spec §3); the `updated*` names win.
        quantity = prm.decimal(p, "updatedQuantity" if "updatedQuantity" in p else "quantity", positive=True)
        price = prm.decimal(p, "updatedPrice" if "updatedPrice" in p else "price", positive=True)
        fee = prm.decimal(p, "maxFeesPercent", required=True)
        quantity = quantity if quantity is not None else order.quantity
        price = price if price is not None else order.price
        payload = expected_payload(nonce, self.contracts[order.symbol], quantity, order.side, price, fee)
        refused = self._check_signed(creds, payload, p.get("signature"), nonce)
        if refused is not None:
            return refused
        self.engine.modify(creds.account, order.id, quantity=quantity, price=price)
        return Response(200, {})

    def _cancel(self, creds: SimCredentials, p: Mapping[str, Any]) -> Response:
        try:
            order = self._find(creds, p)
        except SimRejectError as exc:
            return error(404, 3, f"order ID {p.get('orderId') or p.get('nonce') or p.get('clientId')}: {exc}")
        # Signed over the 8-byte orderId, or the nonce when cancelling by nonce (spec §2).
        handle = int(p["nonce"]) if p.get("nonce") is not None else int(order.id)
        refused = self._check_signed(creds, struct.pack(">Q", handle), p.get("signature"), None)
        if refused is not None:
            return refused
        if order.status.is_final:
            return error(404, 3, f"order ID {order.id} is not open")
        self.engine.cancel(creds.account, order_id=order.id)
        return Response(200, {})

    def _cancel_all(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        nonce = self._nonce(p)
        contract_id = prm.integer(p, "contractId", high=2**32 - 1)
        refused = self._check_signed(creds, struct.pack(">Q", nonce), p.get("signature"), nonce)
        if refused is not None:
            return refused
        for o in list(creds.account.orders.values()):
            if not o.status.is_final and contract_id in (None, self.contracts[o.symbol].id):
                self.engine.cancel(creds.account, order_id=o.id)
        return Response(200, {"status": "success"})

    def _batch(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        orders = p.get("orders")
        if not isinstance(orders, list) or not 1 <= len(orders) <= MAX_BATCH:
            raise prm.ParamError(f"orders must be an array of 1..{MAX_BATCH} actions")
        out: list[dict[str, Any]] = []
        for item in orders:
            out.append(self._batch_one(creds, item))
        return Response(200, {"orders": out})

    def _batch_one(self, creds: SimCredentials, item: Any) -> dict[str, Any]:
        """One batch element's result, or its error body (the batch itself still answers 200)."""
        if not isinstance(item, dict) or item.get("action") not in ("place", "modify", "cancel"):
            return error(400, 4, "each element needs action place, modify or cancel").body
        try:
            if item["action"] == "place":
                result = self._place_one(creds, item)
                if isinstance(result, Response):
                    return result.body
                created = result.created_at
                return {"nonce": result.nonce, "orderId": result.id, "creationTime": int(created.timestamp()),
                        "creationTimeNsPartial": created.microsecond * 1000}  # fmt: skip
            reply = (self._modify if item["action"] == "modify" else self._cancel)(creds, item)
            if reply.status != 200:
                return reply.body
            if item["action"] == "modify":
                return {"orderId": str(item.get("orderId"))}
            return {"nonce": self._find(creds, item).nonce}  # the cancelled order's own nonce
        except SimRejectError as exc:
            return self._reject(exc).body
        except prm.ParamError as exc:
            return error(400, 4, str(exc)).body
