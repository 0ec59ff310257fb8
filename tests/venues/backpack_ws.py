"""A small websocket client for tests of the Backpack simulator's streams: subscribe (signed or not), read
frames, and a barrier that proves nothing else was sent before it."""

from __future__ import annotations

import base64
import json
import time
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

from nacl.signing import SigningKey
from websockets.sync.client import ClientConnection, connect

from exchanges.backpack.sim import BackpackSim

BARRIER = "{}"  # not a valid request: the server answers it with an error frame, in order with everything else


def subscribe_signature(api_key: str, api_secret: str, ts_ms: int | None = None, window_ms: int = 5000) -> list[str]:
    """The `signature` array of a private SUBSCRIBE (spec §5, vector V5), signed with PyNaCl."""
    ts = str(int(time.time() * 1000) if ts_ms is None else ts_ms)
    message = f"instruction=subscribe&timestamp={ts}&window={window_ms}".encode()
    signed = SigningKey(base64.b64decode(api_secret)).sign(message)
    return [api_key, base64.b64encode(signed.signature).decode(), ts, str(window_ms)]


class StreamClient:
    """One connection to the simulator's websocket."""

    def __init__(self, sim: BackpackSim) -> None:
        self._stack = ExitStack()
        self.conn: ClientConnection = self._stack.enter_context(connect(sim.ws_url))

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def subscribe(self, streams: list[str], signature: list[str] | None = None) -> None:
        """Send one SUBSCRIBE frame."""
        msg: dict[str, Any] = {"method": "SUBSCRIBE", "params": streams}
        if signature is not None:
            msg["signature"] = signature
        self.conn.send(json.dumps(msg))

    def recv(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The next frame, parsed with JSON numbers as exact Decimals (TimeoutError when none comes)."""
        return json.loads(self.conn.recv(timeout=timeout_s), parse_float=Decimal)  # type: ignore[no-any-return]

    def until_barrier(self, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Every frame the server sent before it answered a barrier sent now."""
        self.conn.send(BARRIER)
        frames = []
        while True:
            msg = self.recv(timeout_s)
            if msg.get("error", {}).get("code") == 4000:
                return frames
            frames.append(msg)


def data_of(frames: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    """The payloads of the frames on `stream`, in arrival order."""
    return [f["data"] for f in frames if f.get("stream") == stream]
