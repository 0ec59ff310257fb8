"""A scripted private-stream server on 127.0.0.1 (port 0): records what clients send, sends what a test says."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

# Answers a received frame with frames to send back (None: nothing).
Responder = Callable[[str, "ScriptedServer"], list[str] | None]


class ScriptedServer:
    """Each connection's received frames go to `received`; `push` sends to the latest connection."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.received: queue.Queue[str] = queue.Queue()
        self.requests: list[Any] = []  # each connection's handshake request
        self.connections = 0
        self._responder = responder
        self._current: ServerConnection | None = None
        self._lock = threading.Lock()
        self._server: Server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/stream"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def _handle(self, ws: ServerConnection) -> None:
        with self._lock:
            self._current = ws
            self.connections += 1
            self.requests.append(ws.request)
        try:
            for raw in ws:
                text = raw if isinstance(raw, str) else raw.decode()
                self.received.put(text)
                for reply in (self._responder(text, self) if self._responder else None) or []:
                    ws.send(reply)
        except ConnectionClosed:
            pass

    def next_frame(self, timeout_s: float = 5.0) -> str:
        """The next frame any client sent."""
        return self.received.get(timeout=timeout_s)

    def push(self, *frames: str) -> None:
        """Send frames on the latest connection."""
        with self._lock:
            ws = self._current
        assert ws is not None, "no client connected"
        for frame in frames:
            ws.send(frame)

    def drop(self) -> None:
        """Close the latest connection."""
        with self._lock:
            ws = self._current
        assert ws is not None
        ws.close()
