"""The `/_sim/` admin endpoint shared by the simulators: inject faults and read state over HTTP.

GET /_sim/state: accounts, positions, prices. GET /_sim/orders[?since=SEQ][&account=NAME]: the order log
(exchanges/sim/order_log.py). POST /_sim/fault {kind, ...}: inject a fault.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from exchanges.sim.engine import SimEngine
from exchanges.sim.http import Request, Response
from exchanges.sim.ws import SimWsServer

FAULT_KINDS = (
    "reject", "http_error", "latency", "blackhole", "partial_fill", "delay", "drop_ws", "freeze", "jump", "clear",
    "drop_private_ws", "silence_private", "reorder_private",
)  # fmt: skip


def apply_fault(engine: SimEngine, ws: SimWsServer | None, spec: dict[str, Any]) -> dict[str, Any]:
    """Apply one fault described as JSON; returns what was done. ValueError for a bad spec."""
    kind = spec.get("kind")
    count = int(spec.get("count", 1))
    faults = engine.faults
    if kind == "reject":
        only = spec.get("reduce_only")
        message = str(spec.get("message", "rejected by simulator"))
        status = int(spec.get("http_status", 400))
        faults.reject_orders(count, spec["code"], message, status, reduce_only=None if only is None else bool(only))
    elif kind == "http_error":
        retry = spec.get("retry_after")
        faults.fail_requests(count, int(spec.get("status", 503)), None if retry is None else float(retry))
    elif kind == "latency":
        faults.set_latency(float(spec["seconds"]))
    elif kind == "blackhole":
        faults.blackhole_orders(count)
    elif kind == "partial_fill":
        faults.partial_fills(count, Decimal(str(spec["fraction"])))
    elif kind == "delay":  # held on the venue's clock, then carried out unanswered (see InjectedDelay)
        method, path = spec.get("method", "POST"), spec.get("path")
        faults.delay_requests(
            count, float(spec["seconds"]), None if method is None else str(method), None if path is None else str(path)
        )
    elif kind == "drop_ws":
        return {"dropped": ws.drop_all() if ws else 0}
    elif kind == "freeze":
        engine.prices.freeze(str(spec["asset"]), bool(spec.get("on", True)))
    elif kind == "jump":
        return {"price": str(engine.prices.jump(str(spec["asset"]), Decimal(str(spec["pct"]))))}
    elif kind == "clear":
        faults.clear()
        for asset in engine.prices.assets():
            engine.prices.freeze(asset, False)
    else:
        return _private_stream_fault(engine, ws, kind, spec)
    return {"pending": faults.pending()}


def _private_stream_fault(engine: SimEngine, ws: SimWsServer | None, kind: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The faults of the signed (account) websocket streams; ValueError for a kind nobody knows."""
    faults = engine.faults
    if kind == "drop_private_ws":  # only connections holding a private stream; public feeds stay up
        dropped = (ws.drop_private() if ws else 0) + faults.drop_account_streams()
        if dropped:
            faults.note_taken("drop_private_ws")
        return {"dropped": dropped}
    if kind == "silence_private":
        faults.silence_private(bool(spec.get("on", True)))
    elif kind == "reorder_private":
        faults.reorder_private(int(spec.get("count", 1)))
    else:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    return {"pending": faults.pending()}


def engine_state(engine: SimEngine) -> dict[str, Any]:
    """Accounts, positions and prices as JSON (for tests and for a person poking at the simulator)."""
    with engine.lock:
        return {
            "venue": engine.name,
            "marks": {s: str(engine.mark(s)) for s in engine.markets},
            "accounts": {
                name: {
                    "collateral": str(acc.collateral),
                    "equity": str(engine.equity(acc)),
                    "liquidations": acc.liquidations,
                    "orders": [
                        {
                            "id": o.id,
                            "client_id": o.client_id,
                            "symbol": o.symbol,
                            "side": o.side.value,
                            "quantity": str(o.quantity),
                            "filled": str(o.filled),
                            "status": o.status.value,
                        }
                        for o in acc.orders.values()
                    ],
                    "positions": {
                        s: {"quantity": str(p.quantity), "entry_price": str(p.entry_price)}
                        for s, p in acc.positions.items()
                        if p.quantity
                    },
                }
                for name, acc in engine.accounts.items()
            },
            "faults": engine.faults.pending(),
            "faults_taken": dict(engine.faults.taken),
        }


def order_log(engine: SimEngine, since: int = 0, account: str | None = None) -> dict[str, Any]:
    """The orders the engine saw after entry `since` (of `account` alone if given), oldest first, with who sent
    each; `next` is the `since` that reads only what comes after these."""
    with engine.lock:
        return {
            "venue": engine.name,
            "next": engine.order_log.next_seq - 1,
            "orders": [e.to_json() for e in engine.order_log.since(since, account)],
        }


def admin_handler(engine: SimEngine, ws: Callable[[], SimWsServer | None]) -> Callable[[Request], Response]:
    """The handler for every `/_sim/...` request."""

    def handle(request: Request) -> Response:
        if request.method == "GET" and request.path in ("/_sim", "/_sim/state"):
            return Response(200, engine_state(engine))
        if request.method == "GET" and request.path == "/_sim/orders":
            since = request.query.get("since", "0")
            if not (since.isascii() and since.isdigit()):
                return Response(400, {"error": "since must be a whole number"})
            return Response(200, order_log(engine, int(since), request.query.get("account")))
        if request.method == "POST" and request.path == "/_sim/fault":
            try:
                spec = request.json()
                if not isinstance(spec, dict):
                    return Response(400, {"error": "bad fault: body must be a JSON object"})
                return Response(200, apply_fault(engine, ws(), spec))
            except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
                return Response(400, {"error": f"bad fault: {exc}"})
        return Response(404, {"error": "unknown admin path"})

    return handle
