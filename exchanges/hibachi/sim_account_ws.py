"""Hibachi simulator: the account websocket (/ws/account): stream.start/ping/stop, listenKey expiry and the
delivery of account events to started streams, with the chaos knobs (drop, silence, reorder)."""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from core.clock import Clock
from exchanges.hibachi.sim_streams_events import Batch, snapshot_json
from exchanges.hibachi.sim_wire import SimCredentials
from exchanges.sim.engine import SimEngine

LISTEN_KEY_TTL_S = 10.0  # spec §5 (DOCS): the key expires 10 s after the last ping


def reply(request_id: Any, result: Any) -> str:
    """A successful reply `{id, status: 200, result}`."""
    return json.dumps({"id": request_id, "status": 200, "result": result})


def error_reply(request_id: Any, status: int, code: int, message: str) -> str:
    """A refused request: `{id, status, error}` with REST's error body (`{errorCode, message, status}`) inside."""
    body = {"errorCode": code, "message": message, "status": "failed"}
    return json.dumps({"id": request_id, "status": status, "error": body})


def parse_request(text: str) -> tuple[Any, str, dict[str, Any], Any] | str:
    """(id, method, params, signature) of a `{id, method, params, [signature], timestamp}` frame, or the error
    frame to answer."""
    try:
        msg = json.loads(text)
    except ValueError:
        return error_reply(None, 400, 4, "Invalid JSON")
    if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
        return error_reply(None, 400, 4, "A request needs a method")
    params = msg.get("params", {})
    if not isinstance(params, dict):
        return error_reply(msg.get("id"), 400, 4, "params must be an object")
    return msg.get("id"), msg["method"], params, msg.get("signature")


def account_mismatch(params: dict[str, Any], creds: SimCredentials) -> bool:
    """Whether params name an account other than the connection's (REST answers that as a bad key)."""
    given = params.get("accountId")
    return given is not None and str(given) != str(creds.account_id)


@dataclass
class _Stream:
    conn: ServerConnection
    creds: SimCredentials
    listen_key: str | None = None
    last_ping: float = 0.0


class AccountStreams:
    """Every /ws/account connection and the event stream each one started."""

    def __init__(self, engine: SimEngine, clock: Clock, ttl_s: float = LISTEN_KEY_TTL_S) -> None:
        self._engine = engine
        self._clock = clock
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._streams: dict[ServerConnection, _Stream] = {}
        self.events_sent = 0

    def serve(self, conn: ServerConnection, creds: SimCredentials) -> None:
        """Answer one authenticated connection's requests until it closes."""
        stream = _Stream(conn, creds)
        with self._lock:
            self._streams[conn] = stream
        try:
            for message in conn:
                if isinstance(message, str):
                    self._answer(stream, message)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._streams.pop(conn, None)

    def _answer(self, stream: _Stream, text: str) -> None:
        parsed = parse_request(text)
        if isinstance(parsed, str):
            stream.conn.send(parsed)
            return
        request_id, method, params, _signature = parsed
        if account_mismatch(params, stream.creds):
            stream.conn.send(error_reply(request_id, 401, 1, "Invalid API key for this account"))
        elif method == "stream.start":
            # Under the engine lock: no event can fall between the snapshot and the stream's first event.
            with self._engine.lock:
                self._engine.tick()
                snapshot = snapshot_json(self._engine, stream.creds)
                stream.listen_key = secrets.token_hex(16)
                stream.last_ping = self._clock.monotonic()
                stream.conn.send(reply(request_id, {"accountSnapshot": snapshot, "listenKey": stream.listen_key}))
        elif method in ("stream.ping", "stream.stop"):
            with self._engine.lock:
                key = params.get("listenKey", stream.listen_key if method == "stream.stop" else None)
                alive = self._live(stream) if method == "stream.ping" else stream.listen_key is not None
                if not alive or key != stream.listen_key:
                    stream.conn.send(error_reply(request_id, 400, 4, "listenKey expired or unknown"))
                    return
                if method == "stream.ping":
                    stream.last_ping = self._clock.monotonic()
                else:  # a stopped stream (even an expired one) pushes nothing more
                    stream.listen_key = None
                stream.conn.send(reply(request_id, {}))
        else:
            stream.conn.send(error_reply(request_id, 400, 4, f"Unsupported method {method!r}"))

    def _live(self, stream: _Stream) -> bool:
        """Started, and pinged within the listenKey's lifetime."""
        return stream.listen_key is not None and self._clock.monotonic() - stream.last_ping <= self.ttl_s

    def deliver(self, account_id: int, batch: Batch) -> None:
        """Send one engine change's events to the account's live streams (called under the engine lock)."""
        with self._lock:
            targets = [s for s in self._streams.values() if s.creds.account_id == account_id and self._live(s)]
        if not targets or not batch:
            return
        faults = self._engine.faults
        if faults.take_private_silence():
            return
        frames = [json.dumps(event) for event in batch]
        if faults.take_reorder():  # the whole batch goes out at once, so the reordering is taken now
            frames.reverse()
            faults.note_taken("reorder_private")
        for stream in targets:
            try:
                for frame in frames:
                    stream.conn.send(frame)
                    self.events_sent += 1
            except ConnectionClosed:
                continue

    def drop_all(self) -> int:
        """Close every account connection abruptly (fault injection); returns how many."""
        with self._lock:
            conns = list(self._streams)
        for conn in conns:
            conn.close(1012, "simulator dropped the connection")
        return len(conns)

    def connections(self) -> int:
        """Open account connections."""
        with self._lock:
            return len(self._streams)
