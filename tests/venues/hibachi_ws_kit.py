"""Test kit for the Hibachi simulator's websockets: signed order params and a request/reply socket that keeps
every frame it saw (events included) in arrival order."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

from websockets.sync.client import ClientConnection, connect

from core.domain import Side
from exchanges.hibachi.signing import Contract, HmacSigner, cancel_payload, order_payload
from exchanges.hibachi.sim import HibachiSim
from exchanges.hibachi.sim_wire import SimCredentials, us

FEE = Decimal("0.00045")


class Nonces:
    """Fresh nonces on the simulator's own clock (a FakeClock run included)."""

    def __init__(self, sim: HibachiSim) -> None:
        self._sim = sim
        self._step = itertools.count()

    def __call__(self) -> int:
        return us(self._sim.clock.now()) + next(self._step)


def contract(sim: HibachiSim, symbol: str) -> Contract:
    """The signing contract of a simulated one."""
    c = sim.contracts[symbol]
    m = c.market
    return Contract(c.id, symbol, c.underlying_decimals, c.settlement_decimals, m.tick_size, m.step_size,
                    m.min_quantity, m.min_notional, m.initial_margin_rate)  # fmt: skip


def order_params(
    sim: HibachiSim, creds: SimCredentials, nonce: int, symbol: str, side: Side, quantity: str,
    price: str | None = None, **extra: Any,
) -> tuple[dict[str, Any], str]:  # fmt: skip
    """(params incl. accountId, HMAC signature) of a place-order request."""
    payload = order_payload(nonce, contract(sim, symbol), Decimal(quantity), side,
                            Decimal(price) if price else None, FEE)  # fmt: skip
    params: dict[str, Any] = {
        "accountId": creds.account_id, "symbol": symbol, "nonce": nonce, "side": "BID" if side is Side.LONG else "ASK",
        "orderType": "LIMIT" if price else "MARKET", "quantity": quantity, "maxFeesPercent": str(FEE), **extra,
    }  # fmt: skip
    if price:
        params["price"] = price
    return params, HmacSigner(creds.hmac_secret).sign(payload)


def cancel_signature(creds: SimCredentials, order_id: str) -> str:
    """HMAC over the 8-byte order id."""
    return HmacSigner(creds.hmac_secret).sign(cancel_payload(int(order_id)))


class Socket:
    """A client socket that numbers its requests and records every frame received."""

    def __init__(self, url: str, api_key: str | None = None, **options: Any) -> None:
        headers = {"Authorization": api_key} if api_key is not None else None
        self._session = connect(url, additional_headers=headers, **options)  # e.g. user_agent_header
        self.ws: ClientConnection = self._session.__enter__()  # closed by close()
        self.frames: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame (recorded)."""
        frame = json.loads(self.ws.recv(timeout=timeout))
        self.frames.append(frame)
        return frame

    def send(self, message: dict[str, Any]) -> None:
        """Send a raw frame."""
        self.ws.send(json.dumps(message))

    def request(self, method: str, params: dict[str, Any], signature: str | None = None) -> dict[str, Any]:
        """Send `{id, method, params, [signature], timestamp}` and return its reply; frames before it stay in
        `frames` (read them with `events_since`)."""
        request_id = next(self._ids)
        message: dict[str, Any] = {"id": request_id, "method": method, "params": params, "timestamp": 1}
        if signature is not None:
            message["signature"] = signature
        self.send(message)
        while True:
            frame = self.recv()
            if frame.get("id") == request_id and "status" in frame:
                return frame

    def events(self) -> list[dict[str, Any]]:
        """Every pushed event so far (frames without a request id)."""
        return [f for f in self.frames if "topic" in f and "id" not in f]

    def close(self) -> None:
        """Close the connection."""
        self._session.__exit__(None, None, None)


def account_socket(sim: HibachiSim, creds: SimCredentials | None = None) -> tuple[Socket, str]:
    """An account socket with a started stream, and its listenKey."""
    creds = creds or sim.paper
    sock = Socket(sim.ws_account_url(creds.account_id), creds.api_key)
    started = sock.request("stream.start", {"accountId": creds.account_id})
    assert started["status"] == 200, started
    return sock, started["result"]["listenKey"]


def sync(sock: Socket, creds: SimCredentials, listen_key: str) -> dict[str, Any]:
    """A ping round trip: every event sent before it has arrived once this returns."""
    return sock.request("stream.ping", {"accountId": creds.account_id, "listenKey": listen_key})


def topics(events: list[dict[str, Any]]) -> list[str]:
    """The event names, in order."""
    return [e["topic"] for e in events]
