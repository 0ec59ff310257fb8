"""Hibachi simulator: the trade websocket (/ws/trade): the REST order handlers behind `{id, method, params,
signature}` requests, one reply each, and cancel-on-disconnect."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from exchanges.hibachi.sim_account_ws import account_mismatch, error_reply, parse_request, reply
from exchanges.hibachi.sim_wire import SimCredentials
from exchanges.sim.engine import SimEngine
from exchanges.sim.http import NeverAnswerError, Response

Handler = Callable[[SimCredentials, dict[str, Any]], Response]


class TradeHost(Protocol):
    """What the trade socket needs from HibachiSim: its engine, order handlers and checks."""

    engine: SimEngine

    def run_private(self, handler: Handler, creds: SimCredentials, params: dict[str, Any]) -> Response:
        """Run a REST handler as the REST side does (engine lock, tick, errors as the venue's bodies)."""
        ...

    def _check_signed(
        self, creds: SimCredentials, payload: bytes, signature: Any, nonce: int | None
    ) -> Response | None:
        """Signature, then the nonce's window and uniqueness."""
        ...

    def order_routes(self) -> dict[tuple[str, str], Handler]:
        """The REST order handlers."""
        ...


class TradeSessions:
    """Every /ws/trade connection; a connection that enabled cancel-on-disconnect cancels its account's orders."""

    def __init__(self, host: TradeHost) -> None:
        self._host = host
        routes = host.order_routes()
        # The trade socket's methods are the REST order routes under other names (spec §5).
        self._methods: dict[str, Handler] = {
            "order.place": routes[("POST", "/trade/order")],
            "order.modify": routes[("PUT", "/trade/order")],
            "order.cancel": self._cancel,
            "order.status": routes[("GET", "/trade/order")],
            "orders.status": routes[("GET", "/trade/orders")],
            "orders.cancel": routes[("DELETE", "/trade/orders")],
            "orders.batch": routes[("POST", "/trade/orders")],
        }
        self._rest_cancel = routes[("DELETE", "/trade/order")]
        self.cancels_on_disconnect = 0

    def serve(self, conn: ServerConnection, creds: SimCredentials) -> None:
        """Answer one authenticated connection's requests until it closes."""
        cancel_on_disconnect = False
        try:
            for message in conn:
                if not isinstance(message, str):
                    continue
                parsed = parse_request(message)
                if isinstance(parsed, str):
                    conn.send(parsed)
                    continue
                request_id, method, params, signature = parsed
                if method == "orders.enableCancelOnDisconnect":
                    refused = self._enable_cod(creds, request_id, params, signature)
                    cancel_on_disconnect = cancel_on_disconnect or refused is None
                    conn.send(refused or reply(request_id, {}))
                    continue
                answer = self._call(creds, request_id, method, params, signature)
                if answer is not None:
                    conn.send(answer)
        except ConnectionClosed:
            pass
        finally:
            if cancel_on_disconnect:
                self._cancel_everything(creds)

    def _call(self, creds: SimCredentials, request_id: Any, method: str, params: dict[str, Any],
              signature: Any) -> str | None:  # fmt: skip
        """The one reply to a request (None: a blackholed order gets none)."""
        handler = self._methods.get(method)
        if handler is None:
            return error_reply(request_id, 400, 4, f"Unsupported method {method!r}")
        if account_mismatch(params, creds):
            return error_reply(request_id, 401, 1, "Invalid API key for this account")
        body = {k: v for k, v in params.items() if k != "accountId"}
        if signature is not None:
            body["signature"] = signature  # top level on the socket, in the body on REST
        try:
            response = self._host.run_private(handler, creds, body)
        except NeverAnswerError:
            return None
        if response.status == 200:
            return reply(request_id, response.body if response.body is not None else {})
        return error_reply(request_id, response.status, int(response.body.get("errorCode", 4)),
                           str(response.body.get("message", "")))  # fmt: skip

    def _cancel(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        """Cancel by orderId signed over the orderId (SDK); with a `nonce` too, a signature over that nonce also
        passes (DOCS, GO; spec §7 item 9)."""
        if p.get("orderId") is not None and p.get("nonce") is not None:
            nonce = p["nonce"]
            by_id = {k: v for k, v in p.items() if k != "nonce"}
            if isinstance(nonce, int) and not isinstance(nonce, bool) and 0 < nonce < 2**64:
                payload = struct.pack(">Q", nonce)
                host = self._host
                order = host.engine.find_order(creds.account, order_id=str(p["orderId"]))
                if creds.signature_ok(payload, p.get("signature")):
                    refused = host._check_signed(creds, payload, p.get("signature"), nonce)
                    if refused is not None:
                        return refused
                    if order.status.is_final:
                        return Response(404, {"errorCode": 3, "message": f"order ID {order.id} is not open",
                                              "status": "failed"})  # fmt: skip
                    host.engine.cancel(creds.account, order_id=order.id)
                    return Response(200, {})
            return self._rest_cancel(creds, by_id)
        return self._rest_cancel(creds, p)

    def _enable_cod(self, creds: SimCredentials, request_id: Any, params: dict[str, Any], signature: Any) -> str | None:
        """None when enabled; else the error frame. The SDK sends `{nonce}` unsigned, GO signs the nonce: a
        signature, when present, must verify (spec §7 item 9)."""
        if account_mismatch(params, creds):
            return error_reply(request_id, 401, 1, "Invalid API key for this account")
        nonce = params.get("nonce")
        if signature is None:
            return None
        if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 < nonce < 2**64:
            return error_reply(request_id, 400, 4, "Invalid nonce")
        with self._host.engine.lock:
            refused = self._host._check_signed(creds, struct.pack(">Q", nonce), signature, nonce)
        if refused is not None:
            return error_reply(request_id, refused.status, refused.body["errorCode"], refused.body["message"])
        return None

    def _cancel_everything(self, creds: SimCredentials) -> None:
        engine = self._host.engine
        with engine.lock:
            for order in list(creds.account.orders.values()):
                if not order.status.is_final:
                    engine.cancel(creds.account, order_id=order.id)
                    self.cancels_on_disconnect += 1
